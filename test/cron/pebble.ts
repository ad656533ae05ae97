/**
 * A throwaway pebble ACME server (Debian's pebble 2.4) for the ACME fetcher tests: the
 * package's example config with external account binding, listening on 127.0.0.1 only
 * (free ports for the ACME and management interfaces), with a TLS certificate made here
 * for IP:127.0.0.1 (the package ships none), which the tests give passtore as
 * acme_ca_bundle. PEBBLE_VA_ALWAYS_VALID=1 and PEBBLE_VA_NOSLEEP=1: every challenge is
 * valid, so passtore's order (which skips challenge verification) is issued;
 * PEBBLE_WFE_NONCEREJECT=0 so no run meets a deliberately refused nonce. pebble runs as
 * this process's child and is stopped by its handle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openssl } from '../x509/fixture-ca.js';
import { freePort, skipUnless, waitForPort } from './fetch-vault.js';

const PEBBLE = '/usr/bin/pebble';
export const PEBBLE_EAB_EXAMPLE = '/usr/share/doc/pebble/examples/pebble-config-external-account-bindings.json';

/** Why pebble cannot be run here, or undefined. */
export function pebbleUnavailable(): string | undefined {
  if (!existsSync(PEBBLE)) return `${PEBBLE} is missing (apt-get install pebble)`;
  if (!existsSync(PEBBLE_EAB_EXAMPLE)) return `${PEBBLE_EAB_EXAMPLE} is missing (the pebble package's example configs)`;
  return undefined;
}

/** node:test's skip option: a reason outside CI, a failure under CI. */
export function pebbleSkip(): string | false {
  return skipUnless('pebble (ACME)', pebbleUnavailable());
}

interface PebbleConfig {
  pebble: Record<string, unknown> & { externalAccountBindingRequired?: boolean; externalAccountMACKeys?: Record<string, string> };
}

export class TestPebble {
  readonly dir: string;
  /** The TLS certificate pebble serves (self-signed, IP:127.0.0.1): acme_ca_bundle. */
  readonly tlsCert: string;
  /** The EAB kids and keys (base64url) of the package's example config. */
  readonly eabKeys: Record<string, string>;
  port = 0;
  managementPort = 0;
  #child: ChildProcess | undefined;
  #output = '';

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'passtore-pebble-'));
    this.tlsCert = join(this.dir, 'tls-cert.pem');
    const example = JSON.parse(readFileSync(PEBBLE_EAB_EXAMPLE, 'utf8')) as PebbleConfig;
    this.eabKeys = { ...(example.pebble.externalAccountMACKeys ?? {}) };
  }

  static async start(): Promise<TestPebble> {
    const p = new TestPebble();
    try {
      await p.#start();
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  async #start(): Promise<void> {
    const key = join(this.dir, 'tls-key.pem');
    await openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', this.tlsCert,
      '-days', '2', '-subj', '/CN=pebble test server', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    this.port = await freePort();
    this.managementPort = await freePort();
    const example = JSON.parse(readFileSync(PEBBLE_EAB_EXAMPLE, 'utf8')) as PebbleConfig;
    if (example.pebble.externalAccountBindingRequired !== true) throw new Error(`${PEBBLE_EAB_EXAMPLE} does not require external account binding`);
    const config: PebbleConfig = {
      pebble: {
        ...example.pebble,
        listenAddress: `127.0.0.1:${this.port}`,
        managementListenAddress: `127.0.0.1:${this.managementPort}`,
        certificate: this.tlsCert,
        privateKey: key,
      },
    };
    const file = join(this.dir, 'pebble-config.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    const env = { ...process.env, PEBBLE_VA_ALWAYS_VALID: '1', PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' };
    const child = spawn(PEBBLE, ['-config', file], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
    this.#child = child;
    child.stdout!.on('data', (b: Buffer) => (this.#output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (this.#output += b.toString()));
    await waitForPort(this.port, child, 15_000, () => this.#output);
    await waitForPort(this.managementPort, child, 15_000, () => this.#output);
  }

  /** The `[ca] acme_directory`. */
  get directory(): string {
    return `https://127.0.0.1:${this.port}/dir`;
  }

  /** What pebble printed so far. */
  output(): string {
    return this.#output;
  }

  /** A PEM from the management interface (/roots/0, /intermediates/0): new at every start. */
  async managementPem(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port: this.managementPort, path, ca: readFileSync(this.tlsCert) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`pebble ${path}: HTTP ${res.statusCode}`))));
      }).on('error', reject);
    });
  }

  /** Stops pebble (its handle) and removes its files. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000).unref());
      if ((await Promise.race([exited.then(() => true), timer])) === false) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
