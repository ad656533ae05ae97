/**
 * Helpers of the passtore-cron suite: a vault prepared with the real shell commands
 * (host add, add, crtreq, getcrt, keyfile create) on a real SQLite store, its
 * configuration file, the real passtore-cron program run as a child (asynchronously: the
 * SMTP and HTTPS servers may live in this process), the servers of test/cron/servers.ts
 * run inside a network namespace of the test site, and read-only looks at the database.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createTestVault, PASSPHRASE, type TestVault } from '../support/scripted.js';
import { openssl, type FixtureCa } from '../x509/fixture-ca.js';
import type { ReceivedMail } from './servers.js';

export const CRON_BIN = fileURLToPath(new URL('../../src/bin/passtore-cron.js', import.meta.url));
export const CLOCK_SHIFT = fileURLToPath(new URL('./clock-shift.js', import.meta.url));
export const SERVERS = fileURLToPath(new URL('./servers.js', import.meta.url));

export const ADMIN = 'hostmaster@site.test';

export interface CronResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout split into its non-empty lines. */
  lines: string[];
}

export interface CronOptions {
  /** Run inside this network namespace (ip netns exec). */
  ns?: string;
  /** Run as if this many days had passed (clock-shift.js preloaded). */
  shiftDays?: number;
  /** XDG_DATA_HOME of the child (passtore's data directory, the guard's marker). */
  dataHome: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Given the child once spawned (to signal it); with `ns`, its pid is passtore-cron's own (ip netns exec execs it). */
  onSpawn?: (child: ChildProcess) => void;
}

/**
 * Runs the real passtore-cron binary with `args`, asynchronously (spawn), with
 * PASSTORE_SCRYPT_LOG_N=14 and its own XDG_DATA_HOME; no PASSTORE_CONFIG is inherited.
 */
export function runCron(args: string[], options: CronOptions): Promise<CronResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, PASSTORE_SCRYPT_LOG_N: '14', PASSTORE_TEST_SWITCHES: 'for-tests-only', XDG_DATA_HOME: options.dataHome, ...options.env };
  delete env.PASSTORE_CONFIG;
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  const nodeArgs: string[] = [];
  if (options.shiftDays) {
    nodeArgs.push('--import', CLOCK_SHIFT);
    env.PASSTORE_TEST_SHIFT_DAYS = String(options.shiftDays);
  }
  const argv = [process.execPath, ...nodeArgs, CRON_BIN, ...args];
  const [cmd, ...rest] = options.ns ? ['ip', 'netns', 'exec', options.ns, ...argv] : argv;
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, rest, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    options.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`passtore-cron ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (process.env.CRON_TEST_VERBOSE) process.stdout.write(`# passtore-cron ${args.join(' ')}${options.shiftDays ? ` (+${options.shiftDays} days)` : ''} -> ${code}\n${`${stdout}${stderr}`.replace(/^/gm, '#   ')}\n`);
      resolve({ code, signal, stdout, stderr, lines: stdout.split('\n').filter((l) => l.trim() !== '') });
    });
  });
}

/** For assertion messages. */
export const show = (r: CronResult): string => `status ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

/** The FAILED lines of a run. */
export const failures = (r: CronResult): string[] => r.lines.filter((l) => l.startsWith('FAILED: '));

export interface SiteHostSpec {
  /** Short name (host add NAME). */
  name: string;
  address?: string;
  port?: number;
  /** Stored as root@NAME:ssh. */
  rootPassword?: string;
  /** Pinned as the host's SSH key (`type base64`), as host trust would after a yes. */
  hostKey?: string;
}

export interface CronVault {
  dir: string;
  dbPath: string;
  keyfile: string;
  dataHome: string;
  configFile: string;
  domain: string;
  fq(name: string): string;
  /** Opens a session on the vault (passphrase), runs `fn`, closes it. */
  withShell<T>(fn: (tv: TestVault) => Promise<T>): Promise<T>;
}

/**
 * A vault made with the real commands, with `hosts` added (and their root passwords and
 * pinned host keys), and a key file for passtore-cron (`keyfile create`, mode 0400).
 */
export async function createCronVault(options: { domain: string; hosts: SiteHostSpec[] }): Promise<CronVault> {
  const tv = await createTestVault({ domain: options.domain });
  const dir = tv.dir;
  const keyfile = join(dir, 'cron.key');
  const dataHome = join(dir, 'data');
  mkdirSync(dataHome, { recursive: true, mode: 0o700 });
  try {
    for (const h of options.hosts) {
      const addr = h.address ? ` --address ${h.address}` : '';
      const port = h.port ? ` --port ${h.port}` : '';
      assert.equal(await tv.run(`host add ${h.name}${addr}${port}`), 0, tv.io.text());
      if (h.rootPassword) assert.equal(await tv.run(`add ${h.name}`, h.rootPassword, h.rootPassword), 0, tv.io.text());
      if (h.hostKey) {
        const row = await tv.session.store.getHost(`${h.name}.${options.domain}`);
        await tv.session.store.setHostKey(row!.id, h.hostKey);
      }
    }
    assert.equal(await tv.run(`keyfile create ${keyfile}`, PASSPHRASE), 0, tv.io.text());
  } catch (e) {
    await tv.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  await tv.close();
  const cv: CronVault = {
    dir,
    dbPath: tv.config.db.slice('sqlite:'.length),
    keyfile,
    dataHome,
    configFile: join(dir, 'passtore.conf'),
    domain: options.domain,
    fq: (name) => `${name}.${options.domain}`,
    async withShell(fn) {
      const other = await tv.reopen();
      try {
        return await fn(other);
      } finally {
        await other.close();
      }
    },
  };
  return cv;
}

export interface ConfigParts {
  top?: Record<string, string | number>;
  smtp?: Record<string, string | number>;
  ca?: Record<string, string | number>;
  /** Raw lines appended (e.g. the site's [network] section). */
  extra?: string[];
  /** Leave the keyfile line out. */
  noKeyfile?: boolean;
}

/** Writes the vault's passtore.conf; returns its path. */
export function writeConfig(cv: CronVault, parts: ConfigParts = {}): string {
  const top: Record<string, string | number> = {
    domain: cv.domain,
    db: `sqlite:${cv.dbPath}`,
    admin_email: ADMIN,
    crt_ttl: 30,
    notify_days: '30,14,7,2',
    ...(parts.noKeyfile ? {} : { keyfile: cv.keyfile }),
    ...parts.top,
  };
  const lines = Object.entries(top).map(([k, v]) => `${k} = ${v}`);
  for (const [name, body] of [['smtp', parts.smtp], ['ca', parts.ca]] as const) {
    if (!body) continue;
    lines.push('', `[${name}]`, ...Object.entries(body).map(([k, v]) => `${k} = ${v}`));
  }
  if (parts.extra) lines.push('', ...parts.extra);
  writeFileSync(cv.configFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  return cv.configFile;
}

/**
 * Gives a host a current certificate valid for `days` from now: crtreq --out, the fixture
 * CA signs, getcrt stores it. Returns the certificate file.
 */
export async function certifyHost(cv: CronVault, ca: FixtureCa, name: string, days: number): Promise<string> {
  return cv.withShell(async (tv) => {
    const out = mkdtempSync(join(cv.dir, 'req-'));
    assert.equal(await tv.run(`crtreq ${name} --out ${out}`), 0, tv.io.text());
    const cert = await ca.sign(join(out, `${cv.fq(name)}.req`), { days, out: ca.path(`${name}.crt`) });
    assert.equal(await tv.run(`getcrt ${cert}`), 0, tv.io.text());
    return cert;
  });
}

/** Read-only rows from the vault's SQLite file. */
export function dbRows<T = Record<string, unknown>>(cv: CronVault, sql: string, params: unknown[] = []): T[] {
  const db = new Database(cv.dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/**
 * Every row of every table, in a stable order: each row as a short prefix of its JSON and
 * the SHA-256 of all of it (BLOBs as hex), so a difference shows without pages of bytes.
 * `skip` leaves out tables, or columns of a table.
 */
export function snapshot(cv: CronVault, skip: { tables?: string[]; columns?: Record<string, string[]> } = {}): Record<string, string[]> {
  const db = new Database(cv.dbPath, { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
    const out: Record<string, string[]> = {};
    for (const t of tables) {
      if (skip.tables?.includes(t)) continue;
      out[t] = (db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all() as Array<Record<string, unknown>>).map((row) => {
        for (const c of skip.columns?.[t] ?? []) delete row[c];
        const json = JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
        return `${json.slice(0, 100)}… sha256:${createHash('sha256').update(json).digest('hex').slice(0, 16)}`;
      });
    }
    return out;
  } finally {
    db.close();
  }
}

export interface OutboxRow {
  id: number;
  dedupe_key: string | null;
  subject: string;
  state: string;
  attempts: number;
  last_error: string | null;
}

export const outbox = (cv: CronVault): OutboxRow[] => dbRows<OutboxRow>(cv, 'SELECT id, dedupe_key, subject, state, attempts, last_error FROM outbox ORDER BY id');

export interface CertState {
  fqdn: string;
  state: string;
  fingerprint: string;
  not_after: string;
  deployed_at: string | null;
}

export const certificates = (cv: CronVault): CertState[] =>
  dbRows<CertState>(cv, 'SELECT h.fqdn, c.state, c.fingerprint_sha256 AS fingerprint, c.not_after, c.deployed_at FROM certificates c JOIN hosts h ON h.id = c.host_id ORDER BY c.id');

export const requests = (cv: CronVault): Array<{ fqdn: string; state: string; pem: string }> =>
  dbRows(cv, 'SELECT h.fqdn, r.state, r.pem FROM cert_requests r JOIN hosts h ON h.id = r.host_id ORDER BY r.id');

/** A TLS server key and certificate for `ip`, signed by the fixture CA (IP subjectAltName). */
export async function serverCert(ca: FixtureCa, ip: string): Promise<{ key: string; cert: string }> {
  const key = await ca.genKey('ec-p256');
  const req = await ca.request(key, `/O=Test/CN=${ip}`, []);
  const ext = ca.path('server-ext.cnf');
  writeFileSync(ext, `[ext]\nsubjectAltName = IP:${ip}\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n`);
  const cert = ca.path('server.crt');
  await openssl(['x509', '-req', '-in', req, '-CA', ca.caCert, '-CAkey', ca.caKey, '-set_serial', `0x${Date.now().toString(16)}`, '-days', '30', '-sha256', '-extfile', ext, '-extensions', 'ext', '-out', cert]);
  return { key, cert };
}

/** The SHA-256 of the public key (SubjectPublicKeyInfo DER) of a request or certificate (PEM text). */
export async function spkiOf(pem: string, kind: 'req' | 'cert', scratch: string): Promise<string> {
  writeFileSync(scratch, pem);
  const pub = await openssl(kind === 'req' ? ['req', '-in', scratch, '-noout', '-pubkey'] : ['x509', '-in', scratch, '-noout', '-pubkey']);
  return createHash('sha256').update(createPublicKey(pub).export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Counts of received messages by Message-ID. */
export function byMessageId(mails: ReceivedMail[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const mail of mails) m.set(mail.messageId, (m.get(mail.messageId) ?? 0) + 1);
  return m;
}

/** Waits until `cond` holds (mail records may trail a child's exit by a moment). */
export async function until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * servers.js run as a program inside a network namespace: what it receives is appended to
 * `mails` (shared across restarts) and `http`.
 */
export class NsServices {
  child: ChildProcess | undefined;
  readonly mails: ReceivedMail[] = [];
  readonly http: Array<{ path: string; status: number }> = [];
  #stderr = '';

  constructor(
    readonly ns: string,
    readonly address: string,
    readonly ports: { smtp: number; https: number },
    readonly tls: { key: string; cert: string },
    readonly www: string,
  ) {}

  /** Starts SMTP (and HTTPS unless `smtp` is false … or only HTTPS); resolves when ready. */
  async start(options: { smtp?: boolean; https?: boolean; smtpAccept?: number } = {}): Promise<void> {
    await this.stop();
    const args = [SERVERS, '--listen', this.address];
    if (options.smtp ?? true) args.push('--smtp-port', String(this.ports.smtp));
    if (options.smtpAccept !== undefined) args.push('--smtp-accept', String(options.smtpAccept));
    if (options.https ?? true) args.push('--https-port', String(this.ports.https), '--tls-key', this.tls.key, '--tls-cert', this.tls.cert, '--www', this.www);
    const child = spawn('ip', ['netns', 'exec', this.ns, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.#stderr = '';
    child.stderr!.on('data', (d) => (this.#stderr += d));
    let buffer = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`servers did not start: ${this.#stderr}`)), 10_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`servers exited (${code}): ${buffer}${this.#stderr}`));
      });
      child.stdout!.on('data', (d: Buffer) => {
        buffer += d.toString('utf8');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          const ev = JSON.parse(line) as { event: string; mail?: ReceivedMail; path?: string; status?: number; message?: string };
          if (ev.event === 'ready') {
            clearTimeout(timer);
            resolve();
          } else if (ev.event === 'mail') this.mails.push(ev.mail!);
          else if (ev.event === 'http') this.http.push({ path: ev.path!, status: ev.status! });
          else if (ev.event === 'error') reject(new Error(`servers: ${ev.message}`));
        }
      });
    });
  }

  /** Stops the servers (SMTP down: connections are refused). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
  }
}
