/**
 * What the fault suite's files share:
 *
 * - `Place`: a throwaway vault location on SQLite or on a MariaDB database of its own;
 * - `Shell`: the real `passtore` binary on a pseudo-terminal (node-pty), like
 *   test/support/pty.ts's PtySession but keeping the signal the process died of, so a
 *   test can tell a SIGKILL at a named step from any other end;
 * - `runChild`: kill-child.js (a Session driven with scripted answers) in a child process;
 * - `inspect`: the invariant check after a fault. It opens the store with the vault's own
 *   code but writes nothing (no Session, so not even an unlock record: the trail is
 *   checked as the killed process left it), and checks every secret, key, certificate,
 *   request and audit record and the summary of what is current, returning how many
 *   records it checked and what was wrong;
 * - `Tally`: what a file tried and what survived, printed by its after hook, and the
 *   suite's summary once every file of test/faults has reported.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pty from 'node-pty';
import { BACKUP_TABLES } from '../../src/backup.js';
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import type { Store } from '../../src/storage/store.js';
import { verifyChain } from '../../src/vault/audit.js';
import { verifySummary } from '../../src/vault/summary.js';
import { Vault } from '../../src/vault/vault.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { loadPkcs8, spkiSha256 } from '../../src/x509/keys.js';
import Database from 'better-sqlite3';
import { createTestDatabase, mariadbSkip, type TestDatabase } from '../support/mariadb.js';
import { BIN, plain } from '../support/pty.js';
import { PASSPHRASE } from '../support/scripted.js';

export const OPERATOR = 'alice';
export const DOMAIN = 'example.org';
export const fq = (short: string): string => `${short}.${DOMAIN}`;
export const rootSpec = (short: string): string => `root@${fq(short)}:ssh`;

// ---------------------------------------------------------------------------------------
// Places

export type Backend = 'sqlite' | 'mariadb';

export interface Place {
  backend: Backend;
  /** The config's `db`. */
  db: string;
  /** The config's `db_password_file` (MariaDB). */
  passwordFile: string | undefined;
  /** Scratch directory: the guard's state, media, request files. */
  dir: string;
  /** The MariaDB database, for root-level looks. */
  database?: TestDatabase;
  remove(): Promise<void>;
}

export async function newPlace(backend: Backend, name: string): Promise<Place> {
  const dir = mkdtempSync(join(tmpdir(), `passtore-faults-${name}-`));
  if (backend === 'sqlite') {
    return { backend, db: `sqlite:${join(dir, 'vault.db')}`, passwordFile: undefined, dir, remove: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const database = await createTestDatabase();
  return {
    backend,
    db: database.url,
    passwordFile: database.passwordFile,
    dir,
    database,
    remove: async () => {
      await database.drop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The config lines of a HOME whose `passtore` opens `place` as alice. */
/**
 * Runs SQL on `place` as the database's administrator, not through passtore and with no
 * key (SQLite: the file opened directly; MariaDB: the test database's own client, with
 * the foreign key checks off so tables can be written back in any order).
 */
export async function asRoot(place: Pick<Place, 'backend' | 'db' | 'database'>, statement: string): Promise<void> {
  if (place.backend === 'sqlite') {
    const db = new Database(place.db.slice('sqlite:'.length));
    try {
      db.exec(statement);
    } finally {
      db.close();
    }
    return;
  }
  await place.database!.sql(`SET FOREIGN_KEY_CHECKS = 0; ${statement}; SET FOREIGN_KEY_CHECKS = 1`);
}

/** SQL that writes `rows` (as `exportRows` gives them) back as they were: each of `tables` emptied, then filled. */
export function writeBackSql(rows: Record<string, Array<Record<string, unknown>>>, tables: readonly string[]): string {
  const lit = (v: unknown): string => {
    if (v === null || v === undefined) return 'NULL';
    if (typeof v === 'number') return String(v);
    if (typeof v === 'object' && '$b64' in (v as object)) return `X'${Buffer.from(String((v as { $b64: string }).$b64), 'base64').toString('hex')}'`;
    return `'${String(v).replace(/'/g, "''").replace(/\\\\/g, '\\\\\\\\')}'`;
  };
  const out: string[] = [];
  for (const t of [...tables].reverse()) out.push(`DELETE FROM ${t}`);
  for (const t of tables) {
    for (const r of rows[t] ?? []) {
      const cols = Object.keys(r);
      out.push(`INSERT INTO ${t} (${cols.join(', ')}) VALUES (${cols.map((c) => lit(r[c])).join(', ')})`);
    }
  }
  return out.join(';\n');
}

/** The back ends a file loops over, each with the reason it is skipped here (or false). */
export async function backendsToRun(): Promise<Array<{ backend: Backend; skip: string | false }>> {
  return [
    { backend: 'sqlite', skip: false },
    { backend: 'mariadb', skip: await mariadbSkip() },
  ];
}

export function configLines(place: Pick<Place, 'db' | 'passwordFile'>, extra: string[] = []): string[] {
  return [`domain = ${DOMAIN}`, `db = ${place.db}`, ...(place.passwordFile ? [`db_password_file = ${place.passwordFile}`] : []), `operator = ${OPERATOR}`, ...extra];
}

// ---------------------------------------------------------------------------------------
// The real passtore on a pseudo-terminal

export interface ShellExit {
  code: number;
  /** The signal number (9: SIGKILL), 0 for a normal exit. */
  signal: number;
}

export class Shell {
  transcript = '';
  exit: ShellExit | undefined;
  #proc: pty.IPty;
  #waiters: Array<() => void> = [];
  #exited: Promise<ShellExit>;

  constructor(args: string[], env: Record<string, string>) {
    this.#proc = pty.spawn(process.execPath, [BIN, ...args], { name: 'xterm-256color', cols: 160, rows: 50, env, cwd: env.HOME });
    this.#proc.onData((d) => {
      this.transcript += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#exited = new Promise((resolve) => {
      this.#proc.onExit(({ exitCode, signal }) => {
        this.exit = { code: exitCode, signal: signal ?? 0 };
        for (const w of this.#waiters.splice(0)) w();
        resolve(this.exit);
      });
    });
  }

  get screen(): string {
    return plain(this.transcript);
  }

  get mark(): number {
    return this.screen.length;
  }

  /** Waits until `what` shows after `from`; returns where it ends. */
  async expect(what: string | RegExp, options: { from?: number; timeoutMs?: number } = {}): Promise<number> {
    const from = options.from ?? 0;
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    for (;;) {
      const text = this.screen.slice(from);
      const m = typeof what === 'string' ? (text.includes(what) ? { index: text.indexOf(what), 0: what } : null) : what.exec(text);
      if (m) return from + m.index + m[0].length;
      if (this.exit) throw new Error(`passtore ended (status ${this.exit.code}, signal ${this.exit.signal}) before showing ${String(what)}; screen:\n${this.screen.slice(-1500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${String(what)}; screen:\n${this.screen.slice(-1500)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  line(text: string): void {
    this.#proc.write(`${text}\r`);
  }

  /** Answers the passphrase prompt and waits for the shell's prompt. */
  async unlock(passphrase = PASSPHRASE): Promise<void> {
    await this.expect(/Passphrase for [^\n]*: $/);
    await pause(30);
    this.line(passphrase);
    await this.expect(/\npasstore> $/);
  }

  /**
   * Types a command, answers its prompts in order, and waits for the next shell prompt;
   * returns what the command printed. With `dies`, waits for the process to end instead.
   */
  async command(text: string, answers: string[] = [], options: { dies?: boolean; timeoutMs?: number } = {}): Promise<string> {
    const start = this.mark;
    this.line(text);
    let from = start + text.length;
    for (const a of answers) {
      from = await this.expect(/(: |\[y\/N\] )$/, { from, timeoutMs: options.timeoutMs });
      await pause(30);
      this.line(a);
    }
    if (options.dies) {
      await this.exited(options.timeoutMs ?? 30_000);
      return this.screen.slice(start);
    }
    const end = await this.expect(/\npasstore> $/, { from: start + text.length, timeoutMs: options.timeoutMs });
    return this.screen.slice(start + text.length, end - 'passtore> '.length).replace(/^\n/, '');
  }

  exited(timeoutMs = 20_000): Promise<ShellExit> {
    return Promise.race([
      this.#exited,
      new Promise<ShellExit>((_, reject) => setTimeout(() => reject(new Error(`passtore did not end; screen:\n${this.screen.slice(-800)}`)), timeoutMs).unref()),
    ]);
  }

  /** Leaves the shell with `exit`; kills it if it does not end. */
  async close(): Promise<void> {
    if (this.exit) return;
    this.line('exit');
    await this.exited(5_000).catch(() => this.kill());
  }

  kill(): void {
    if (!this.exit) this.#proc.kill('SIGKILL');
  }
}

export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A throwaway HOME for `passtore` on `place`, with `env` added (PASSTORE_CRASH_AT…). */
export function homeFor(place: Pick<Place, 'db' | 'passwordFile'>, extra: string[] = []): { dir: string; env: Record<string, string>; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'passtore-faults-home-'));
  mkdirSync(join(dir, '.config', 'passtore'), { recursive: true });
  writeFileSync(join(dir, '.config', 'passtore', 'passtore.conf'), `${configLines(place, extra).join('\n')}\n`);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, TERM: 'xterm-256color', LANG: 'C.UTF-8', PASSTORE_SCRYPT_LOG_N: '14', PASSTORE_TEST_SWITCHES: 'for-tests-only', NO_COLOR: '1', PAGER: 'cat' };
  return { dir, env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------
// The Session child

const CHILD = fileURLToPath(new URL('./kill-child.js', import.meta.url));

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/**
 * Runs one command line in kill-child.js on `place` as alice, with PASSTORE_CRASH_AT =
 * `step`; `answers` are typed at its prompts after the passphrase.
 */
export function runChild(place: Pick<Place, 'db' | 'passwordFile' | 'dir'>, step: string, line: string, answers: string[] = [], timeoutMs = 60_000): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PASSTORE_CRASH_AT: step, PASSTORE_SCRYPT_LOG_N: '14', PASSTORE_TEST_SWITCHES: 'for-tests-only', PASSTORE_STATE_DIR: place.dir, PASSTORE_TEST_DB_PASSWORD_FILE: place.passwordFile ?? '' };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [CHILD, place.db, line, PASSPHRASE, ...answers], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kill-child '${line}' did not end in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

// ---------------------------------------------------------------------------------------
// The invariant check

export interface Expectation {
  /**
   * Entries by spec (`root@FQDN:ssh`): the values the current password may have. `null`
   * among them: the entry may also be missing or unset (an add that did not commit).
   */
  passwords?: Record<string, Array<string | null>>;
  /** Entries by spec: exactly these values in their history (any order). */
  history?: Record<string, string[]>;
  /** Entries by spec: the pending (not yet confirmed) password. */
  pending?: Record<string, string>;
}

export interface Inspection {
  /** Records read and checked: entries, history, pending, keys, certificates, requests, audit records. */
  checked: number;
  /** What was lost, corrupted or half-written; empty when the vault is sound. */
  problems: string[];
  generation: number;
  counts: { hosts: number; entries: number; set: number; history: number; keys: number; certificates: number; requests: number; openRequests: number; audit: number };
  /** Decrypted current passwords by spec (set entries only). */
  values: Map<string, string>;
  /** The audit actions, in order (action outcome target). */
  auditTrail: string[];
}

const spec = (e: { user: string; fqdn: string; service: string }) => `${e.user}@${e.fqdn}:${e.service}`;
const sha256hex = (b: Buffer | ArrayBuffer) => createHash('sha256').update(Buffer.from(b as ArrayBuffer)).digest('hex');

/** The SPKI SHA-256 of a PKCS#10 request, read with @peculiar/x509 (not passtore's code). */
async function requestSpki(pem: string): Promise<string> {
  const { Pkcs10CertificateRequest } = await import('@peculiar/x509');
  return sha256hex(new Pkcs10CertificateRequest(pem).publicKey.rawData);
}

/** Opens `place` read-only in spirit (nothing is written) and checks every invariant. */
export async function inspect(place: Pick<Place, 'db' | 'passwordFile'>, want: Expectation = {}): Promise<Inspection> {
  const store = await openStore(place.db, place.passwordFile, { create: false });
  try {
    return await inspectStore(store, want);
  } finally {
    await store.close();
  }
}

export async function inspectStore(store: Store, want: Expectation = {}): Promise<Inspection> {
  const problems: string[] = [];
  const values = new Map<string, string>();
  const result: Inspection = { checked: 0, problems, generation: 0, counts: { hosts: 0, entries: 0, set: 0, history: 0, keys: 0, certificates: 0, requests: 0, openRequests: 0, audit: 0 }, values, auditTrail: [] };
  const vault = await Vault.load(store);
  if (!vault) {
    problems.push('the vault record is gone');
    return result;
  }
  const passphrase = Secret.fromString(PASSPHRASE);
  try {
    await vault.unlockWithPassphrase(OPERATOR, passphrase, { failureDelayMs: 1 });
  } catch (e) {
    problems.push(`the vault does not unlock: ${(e as Error).message}`);
    return result;
  } finally {
    passphrase.wipe();
  }
  try {
    result.generation = (await store.getVault())!.dataKeyGeneration;
    const { entries, history, keys } = await store.allSecrets();
    const open = <T>(what: string, fn: () => T): T | undefined => {
      try {
        return fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
        return undefined;
      }
    };
    // Every password, current, pending and past, decrypts.
    const pending = new Map<string, string>();
    for (const e of entries) {
      result.checked++;
      result.counts.entries++;
      if (e.state === 'set') {
        result.counts.set++;
        const s = open(`${spec(e)} (current)`, () => vault.openPassword(e));
        if (s) {
          values.set(spec(e), s.reveal());
          s.wipe();
        }
      } else if (e.secretCiphertext) problems.push(`${spec(e)} is unset but holds a ciphertext`);
      if (e.pendingCiphertext) {
        result.checked++;
        const s = open(`${spec(e)} (pending)`, () => vault.openPending(e));
        if (s) {
          pending.set(spec(e), s.reveal());
          s.wipe();
        }
      }
    }
    const past = new Map<string, string[]>();
    for (const h of history) {
      result.checked++;
      result.counts.history++;
      if (!h.secretCiphertext) continue;
      const s = open(`${spec(h)} (version ${h.version}, history)`, () => vault.openPassword(h));
      if (s) {
        past.set(spec(h), [...(past.get(spec(h)) ?? []), s.reveal()]);
        s.wipe();
      }
    }
    for (const [name, allowed] of Object.entries(want.passwords ?? {})) {
      const got = values.get(name);
      if (got === undefined ? !allowed.includes(null) : !allowed.includes(got)) {
        problems.push(`${name}: ${got === undefined ? 'missing or unset' : 'holds an unexpected value'} (expected ${allowed.map((v) => (v === null ? 'none' : 'one of the stored values')).join(' or ')})`);
      }
    }
    for (const [name, list] of Object.entries(want.history ?? {})) {
      const got = [...(past.get(name) ?? [])].sort();
      if (JSON.stringify(got) !== JSON.stringify([...list].sort())) problems.push(`${name}: its history holds ${got.length} values, not the ${list.length} expected`);
    }
    for (const [name, value] of Object.entries(want.pending ?? {})) {
      if (pending.get(name) !== value) problems.push(`${name}: the pending password is ${pending.has(name) ? 'wrong' : 'missing'}`);
    }

    // Every key decrypts, is the key its row names, and matches its certificates;
    // requests, keys and certificates agree with each other.
    const keyById = new Map(keys.map((k) => [k.id, k]));
    const hosts = await store.findHosts('*');
    result.counts.hosts = hosts.length;
    for (const k of keys) {
      result.checked++;
      result.counts.keys++;
      const pkcs8 = open(`the private key ${k.spkiSha256.slice(0, 16)} of ${k.fqdn}`, () => vault.openKey(k));
      if (!pkcs8) continue;
      const key = loadPkcs8(pkcs8);
      pkcs8.fill(0);
      if (spkiSha256(key) !== k.spkiSha256) problems.push(`the private key ${k.id} of ${k.fqdn} is not the key its row names`);
      for (const c of (await store.listCertificates(k.hostId)).filter((c) => c.keyId === k.id)) {
        if (!parseCertificate(c.pem).cert.checkPrivateKey(key)) problems.push(`${k.fqdn}: certificate ${c.serial} does not match its key`);
      }
    }
    for (const h of hosts) {
      const certs = await store.listCertificates(h.id);
      const hostKeys = keys.filter((k) => k.hostId === h.id);
      const requests = await store.listRequests(h.id);
      result.checked += certs.length + requests.length;
      result.counts.certificates += certs.length;
      result.counts.requests += requests.length;
      const current = certs.filter((c) => c.state === 'current');
      if (current.length > 1) problems.push(`${h.fqdn} has ${current.length} current certificates`);
      for (const c of current) if (keyById.get(c.keyId)?.state !== 'current') problems.push(`${h.fqdn}: the current certificate's key is ${keyById.get(c.keyId)?.state ?? 'missing'}`);
      if (hostKeys.filter((k) => k.state === 'current').length > 1) problems.push(`${h.fqdn} has more than one current key`);
      const openReqs = requests.filter((r) => r.state === 'created' || r.state === 'sent');
      result.counts.openRequests += openReqs.length;
      if (openReqs.length > 1) problems.push(`${h.fqdn} has ${openReqs.length} open requests`);
      for (const r of requests) {
        const k = keyById.get(r.keyId);
        if (!k) {
          problems.push(`${h.fqdn}: request ${r.id} without its key`);
          continue;
        }
        if ((r.state === 'created' || r.state === 'sent') && k.state !== 'pending') problems.push(`${h.fqdn}: open request ${r.id} whose key is ${k.state}`);
        if (r.state === 'cancelled' && k.state === 'pending') problems.push(`${h.fqdn}: cancelled request ${r.id} whose key still waits`);
        if (r.state === 'fulfilled' && !certs.some((c) => c.keyId === k.id)) problems.push(`${h.fqdn}: fulfilled request ${r.id} without a certificate`);
        if ((await requestSpki(r.pem)) !== k.spkiSha256) problems.push(`${h.fqdn}: request ${r.id} is not for its key`);
      }
      for (const k of hostKeys.filter((k) => k.state === 'pending' && k.origin === 'generated')) {
        if (!openReqs.some((r) => r.keyId === k.id)) problems.push(`${h.fqdn}: a generated key waits without an open request (half-written)`);
      }
    }

    // The audit trail verifies, as the last process left it.
    const rows = await store.listAudit();
    result.checked += rows.length;
    result.counts.audit = rows.length;
    result.auditTrail = rows.map((r) => `${r.action} ${r.outcome} ${r.target}`);
    const report = verifyChain(rows, vault.auditKey()!, (await store.getVault())?.auditHead);
    for (const p of report.problems) problems.push(`audit: ${p}`);
    // The summary of what is current (src/vault/summary.ts) matches what the kill left.
    try {
      if (!(await verifySummary(store, vault.auditKey()!))) problems.push('summary: the vault record holds no summary of what is current');
    } catch (e) {
      problems.push(`summary: ${(e as Error).message}`);
    }
  } finally {
    vault.lock();
  }
  return result;
}

/** Rows in each table of a store (for "the target is empty or complete"). */
export async function tableCounts(place: Pick<Place, 'db' | 'passwordFile'>): Promise<Record<string, number>> {
  const store = await openStore(place.db, place.passwordFile, { create: false });
  try {
    const rows = await store.exportRows();
    return Object.fromEntries(BACKUP_TABLES.map((t) => [t, rows[t]?.length ?? 0]));
  } finally {
    await store.close();
  }
}

// ---------------------------------------------------------------------------------------
// Tallies and the summary

/** What every file of the suite does last: its clean-ups (newest first), then its report. */
export async function endOfFile(tally: Tally, cleanups: Array<() => Promise<unknown> | unknown>): Promise<void> {
  try {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  } finally {
    tally.report();
  }
}

export interface KillPoint {
  operation: string;
  step: string;
  backend: Backend;
}

/** What one test file tried and checked. */
export class Tally {
  /** Operation × kill point × back end, each killed and checked. */
  kills: KillPoint[] = [];
  /** Kill points after which every check passed. */
  killsSurvived = 0;
  /** Other faults injected (database outage, peers dropping), and whether each was survived. */
  faults: Array<{ name: string; survived: boolean; why?: string }> = [];
  recordsChecked = 0;
  recordsLost = 0;
  /** Mails a receiver got twice (at-least-once delivery), and mails lost. */
  duplicateMails = 0;
  mailsChecked = 0;
  mailsLost = 0;

  constructor(readonly file: string) {}

  /**
   * Registers an injected fault; `fail` marks it not survived (data lost, a crash, a check
   * that failed), `done` settles it. Use in try/catch/finally around the fault's checks.
   */
  fault(name: string): { fail(why: string): void; done(): void } {
    const f: { name: string; survived: boolean; why?: string } = { name, survived: false };
    this.faults.push(f);
    return {
      fail: (why) => {
        f.why ??= why.split('\n')[0];
      },
      done: () => {
        f.survived = f.why === undefined;
      },
    };
  }

  /** Adds an inspection's figures; returns its problems (the test asserts them empty). */
  record(i: Inspection): string[] {
    this.recordsChecked += i.checked;
    this.recordsLost += i.problems.length;
    return i.problems;
  }

  line(): string {
    const ops = new Set(this.kills.map((k) => k.operation)).size;
    return (
      `${this.kills.length} operation × kill points on ${ops} operations (${this.killsSurvived} survived)` +
      `, ${this.faults.length} other faults (${this.faults.filter((f) => f.survived).length} survived)` +
      `, ${this.recordsChecked} records checked afterwards, ${this.recordsLost} lost or corrupted` +
      (this.mailsChecked ? `, ${this.mailsChecked} mails checked, ${this.mailsLost} lost, ${this.duplicateMails} delivered twice (at-least-once)` : '')
    );
  }

  /**
   * Prints this file's line and, once every test file of test/faults has reported in this
   * run, the suite's summary (the last file to finish prints it).
   */
  report(): void {
    console.log(`fault suite, ${this.file}: ${this.line()}`);
    const here = dirname(fileURLToPath(import.meta.url));
    const siblings = readdirSync(here).filter((n) => n.endsWith('.test.js')).sort();
    // The files of test/faults this run was given (all of them when it names none).
    const given = siblings.filter((f) => runnerArgs().some((a) => basename(a) === f));
    const files = given.length > 0 ? given : siblings;
    // Tallies of runs that never completed (a file run on its own, an interrupted run).
    for (const old of readdirSync(tmpdir()).filter((n) => n.startsWith('passtore-faults-tally-'))) {
      try {
        if (Date.now() - statSync(join(tmpdir(), old)).mtimeMs > 3_600_000) rmSync(join(tmpdir(), old), { recursive: true, force: true });
      } catch {
        // another run removed it
      }
    }
    const dir = join(tmpdir(), `passtore-faults-tally-${runId()}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${this.file}.json`), JSON.stringify(this));
    const reported = readdirSync(dir).filter((n) => n.endsWith('.json')).map((n) => n.replace(/\.json$/, ''));
    if (!files.every((f) => reported.includes(basename(f, '.js')))) {
      if (files.length === 1) rmSync(dir, { recursive: true, force: true });
      return;
    }
    try {
      closeSync(openSync(join(dir, 'printed'), 'wx'));
    } catch {
      return; // another file printed it
    }
    const all = reported.map((n) => JSON.parse(readFileSync(join(dir, `${n}.json`), 'utf8')) as Tally);
    const sum = (f: (t: Tally) => number) => all.reduce((a, t) => a + f(t), 0);
    const kills = all.flatMap((t) => t.kills);
    const byOp = new Map<string, Set<string>>();
    for (const k of kills) byOp.set(k.operation, (byOp.get(k.operation) ?? new Set()).add(`${k.step}${k.backend === 'mariadb' ? ' (MariaDB)' : ''}`));
    const faults = all.flatMap((t) => t.faults);
    const lost = sum((t) => t.recordsLost);
    const lines = [
      '==== fault suite summary ====',
      `operation × kill points tried: ${kills.length} on ${byOp.size} operations; survived: ${sum((t) => t.killsSurvived)}`,
      ...[...byOp].map(([op, steps]) => `  ${op}: ${[...steps].join(', ')}`),
      `other faults injected: ${faults.length}; survived: ${faults.filter((f) => f.survived).length}`,
      ...faults.map((f) => `  ${f.survived ? 'survived' : 'NOT survived'}: ${f.name}${f.why ? ` (${f.why})` : ''}`),
      `records checked after the faults: ${sum((t) => t.recordsChecked)}; lost or corrupted: ${lost}`,
      `mails checked: ${sum((t) => t.mailsChecked)}; lost: ${sum((t) => t.mailsLost)}; delivered twice (at-least-once, same Message-ID): ${sum((t) => t.duplicateMails)}`,
      'not counted here, killed in other suites: deploy-write-cert, deploy-write-key, deploy-install and passwd-pending-stored, passwd-chpasswd-done, passwd-verified (test/remote, with the deploy input cut and SSH connections dropped mid-transfer), deploy-reload and a profile deploy\'s steps (test/remote/profiles), sshkey-rotate-added (test/remote/access), rekey by timing (test/vault/rekey-crash)',
      "fuzz inputs: test/fuzz/parsers.test.ts prints its own count ('fuzz: N inputs tried'; PASSTORE_FUZZ_RUNS per property, default 2000)",
    ];
    console.log(lines.join('\n'));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The command line of the test runner (the parent of every test file's process). */
function runnerArgs(): string[] {
  try {
    return readFileSync(`/proc/${process.ppid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** The test runner's process (the parent of every test file's process) and its start time. */
function runId(): string {
  const ppid = process.ppid;
  try {
    const stat = readFileSync(`/proc/${ppid}/stat`, 'utf8');
    return `${ppid}-${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
  } catch {
    return String(ppid);
  }
}

