/**
 * Shared by the IMAP and ACME fetcher tests (imap.test.ts, acme.test.ts): a real vault on
 * SQLite whose hosts hold certificates within crt_ttl days of expiry (signed by the
 * fixture CA, stored by getcrt), a key file for passtore-cron, a config file written per
 * test, and passtore-cron itself run as a child process with async execFile (never the
 * synchronous kind: the servers the tests talk to run in this process or are its
 * children). Also free ports, waiting for a port, and the CI rule for missing servers.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { CertRow } from '../../src/storage/store.js';
import { createTestVault, PASSPHRASE, removeTestDir, type TestVault } from '../support/scripted.js';
import { openssl, type FixtureCa } from '../x509/fixture-ca.js';

export const DOMAIN = 'example.org';
export const fq = (short: string): string => `${short}.${DOMAIN}`;

/** The built passtore-cron (dist/src/bin/passtore-cron.js). */
export const CRON_BIN = fileURLToPath(new URL('../../src/bin/passtore-cron.js', import.meta.url));

/** node:test's skip option for a missing server: a printed reason outside CI, a failure under CI. */
export function skipUnless(what: string, why: string | undefined): string | false {
  if (!why) return false;
  if (process.env.CI === 'true') throw new Error(`CI requires ${what}: ${why}`);
  console.log(`# skipping ${what} tests: ${why}`);
  return why;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export { freePort } from '../support/mariadb.js';

/** Waits until 127.0.0.1:port accepts a connection; fails early if `child` exits. */
export async function waitForPort(port: number, child?: ChildProcess, timeoutMs = 15_000, output?: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) before listening on ${port}: ${output?.() ?? ''}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms: ${output?.() ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface CronResult {
  status: number;
  stdout: string;
  stderr: string;
  /** stdout's lines, empty ones dropped. */
  lines: string[];
  /** The lines that start with FAILED: */
  failures: string[];
}

/** Runs `passtore-cron --config FILE COMMAND` as a child (async), with its own XDG_DATA_HOME. */
export function runCron(configFile: string, command: string, dataHome: string, timeoutMs = 60_000): Promise<CronResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_DATA_HOME: dataHome };
  delete env.PASSTORE_CONFIG;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CRON_BIN, '--config', configFile, command], { env, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as { code?: unknown; signal?: string | null; message: string } | null;
      if (e && typeof e.code !== 'number') {
        reject(new Error(`passtore-cron ${command} did not finish (${e.signal ?? e.code ?? e.message}): ${stdout}${stderr}`));
        return;
      }
      const lines = stdout.split('\n').filter((l) => l.trim() !== '');
      resolve({ status: e ? Number(e.code) : 0, stdout, stderr, lines, failures: lines.filter((l) => l.startsWith('FAILED: ')) });
    });
  });
}

/** A readable account of a run, for assertion messages. */
export const shown = (r: CronResult): string => `status ${r.status}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

/** SHA-256 (hex) of a public key's SPKI DER: what the vault keys certificates by. */
export function spkiSha256OfCert(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The same for a certificate request, read by openssl (independently of passtore's parser). */
export async function spkiSha256OfRequest(csrPem: string, scratch: string): Promise<string> {
  writeFileSync(scratch, csrPem);
  const pub = await openssl(['req', '-in', scratch, '-noout', '-pubkey']);
  return createHash('sha256').update(createPublicKey(pub).export({ type: 'spki', format: 'der' })).digest('hex');
}

export interface OldCert {
  fqdn: string;
  /** Its key's type: what the renewal keeps. */
  keyType: 'rsa-2048' | 'ec-p256';
  serial: string;
  fingerprint: string;
  /** The request the old certificate was issued for (its key is the one in use now). */
  requestFile: string;
}

export interface ExpiringVault {
  tv: TestVault;
  /** Scratch directory (config, key file, password files, certificates). */
  work: string;
  /** passtore-cron's XDG_DATA_HOME (its dataDir() is DATA_HOME/passtore). */
  dataHome: string;
  keyfile: string;
  configFile: string;
  old: Map<string, OldCert>;
  /** Writes the config: the vault's db, keyfile, domain and crt_ttl, then `lines`. */
  writeConfig(lines: string[]): void;
  cron(command: string): Promise<CronResult>;
  /** The host's current certificate in the store. */
  current(fqdn: string): Promise<CertRow>;
  /** Every certificate row of every host: what a refusal must leave as it is. */
  certRows(): Promise<Array<[string, string, string]>>;
  close(): Promise<void>;
}

/**
 * A vault (real Session, SQLite) with `hosts` (short names), each with a key of `keyType`
 * and a certificate from `ca` that expires in `days` days (within the default crt_ttl,
 * 30), and a key file. Hosts get the address 127.0.0.1 and no pinned SSH host key, so the
 * deploy after a fetch fails before any connection ("no pinned SSH host key").
 */
export async function expiringVault(ca: FixtureCa, hosts: string[], days = 10, keyType: OldCert['keyType'] = 'ec-p256'): Promise<ExpiringVault> {
  const tv = await createTestVault({ domain: DOMAIN });
  const work = mkdtempSync(join(tmpdir(), 'passtore-fetch-'));
  const dataHome = join(work, 'data');
  mkdirSync(dataHome, { mode: 0o700 });
  const reqDir = join(work, 'requests');
  mkdirSync(reqDir);
  const old = new Map<string, OldCert>();
  for (const h of hosts) {
    assert.equal(await tv.run(`host add ${h} --address 127.0.0.1`), 0, tv.io.text());
    assert.equal(await tv.run(`crtreq ${h} --type ${keyType} --out ${reqDir}`), 0, tv.io.text());
    const requestFile = join(reqDir, `${fq(h)}.req`);
    const certFile = await ca.sign(requestFile, { days });
    assert.equal(await tv.run(`getcrt ${certFile}`), 0, tv.io.text());
    const x = new X509Certificate(readFileSync(certFile));
    old.set(fq(h), { fqdn: fq(h), keyType, serial: x.serialNumber.toLowerCase(), fingerprint: await ca.fingerprint(certFile), requestFile });
  }
  const keyfile = join(work, 'cron.key');
  assert.equal(await tv.run(`keyfile create ${keyfile}`, PASSPHRASE), 0, tv.io.text());
  const configFile = join(work, 'passtore.conf');
  const store = tv.session.store;
  const ev: ExpiringVault = {
    tv,
    work,
    dataHome,
    keyfile,
    configFile,
    old,
    writeConfig(lines) {
      writeFileSync(configFile, [`domain = ${DOMAIN}`, `db = ${tv.config.db}`, `keyfile = ${keyfile}`, 'crt_ttl = 30', ...lines, ''].join('\n'), { mode: 0o600 });
    },
    cron: (command) => runCron(configFile, command, dataHome),
    async current(fqdn) {
      const c = (await store.currentCertificates(fqdn)).find((r) => r.fqdn === fqdn);
      assert.ok(c, `${fqdn} has a current certificate`);
      return c;
    },
    async certRows() {
      const out: Array<[string, string, string]> = [];
      for (const h of await store.findHosts('*')) {
        for (const c of await store.listCertificates(h.id)) out.push([h.fqdn, c.fingerprintSha256, c.state]);
      }
      return out.sort();
    },
    async close() {
      await tv.close().catch(() => undefined);
      removeTestDir(tv);
      rmSync(work, { recursive: true, force: true });
    },
  };
  return ev;
}
