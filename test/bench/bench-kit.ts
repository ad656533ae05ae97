/**
 * What the benchmarks (vault-shell, certificates, putcrt, cron) and their fixture
 * generators (cert-fixtures, cron-fixtures) share: timing statistics, the figure table
 * and the target/ratio/verdict table, machine information and load averages, clean-up on
 * every way out, the test-host helpers (nsenter, the tracer's events) and the fixture
 * CA's certificate signing.
 *
 * Importing it has no side effect: no signal handler, no environment variable (it does
 * not load test/support/scripted.ts, which lowers the scrypt cost), and @peculiar/x509 is
 * loaded (and given Node's WebCrypto) only when a fixture CA is first used.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as X509 from '@peculiar/x509';
import type BetterSqlite3 from 'better-sqlite3';
import type { TestHost } from '../support/site.js';
import type { TraceEvent } from './putcrt-trace.js';

export const execFileP = promisify(execFile);
const generateKeyPairP = promisify(generateKeyPair);
export const DAY = 86_400_000;

// ---------------------------------------------------------------------------------------
// Timing and statistics

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** A figure computed from others, not measured: shown as "derived" (n = 0). */
export const derived = (ms: number): Stat => ({ median: ms, min: ms, max: ms, n: 0 });

export const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/** Wall milliseconds `fn` takes. */
export async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Runs fn(0 … count-1), at most `width` at once; results in order. */
export async function pool<T>(count: number, width: number, fn: (i: number) => Promise<T>, progress?: (done: number) => void): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await fn(i);
      progress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
  return out;
}

/** A progress line rewritten in place at each tenth of `total`, ended at the last. */
export function progressPrinter(label: string, total: number): (done: number) => void {
  const t0 = performance.now();
  let shown = 0;
  return (done) => {
    const tenth = Math.floor((done * 10) / total);
    if (tenth > shown || done === total) {
      shown = tenth;
      process.stdout.write(`\r  ${label}: ${done}/${total} (${((performance.now() - t0) / 1000).toFixed(0)} s)   ${done === total ? '\n' : ''}`);
    }
  };
}

// ---------------------------------------------------------------------------------------
// Tables

/** Columns padded to their widest cell, `right` ones right-aligned; a blank line where `blankBefore(i)`. */
export function table(head: string[], body: string[][], right: Set<number>, blankBefore?: (i: number) => boolean): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const [i, b] of body.entries()) {
    if (blankBefore?.(i)) console.log('');
    console.log(line(b));
  }
}

/** One line of the figure table. */
export interface Row {
  figure: string;
  stat: Stat;
  /** CPU time of this process (user + system), where measured: it moves less than wall time on a shared machine. */
  cpu?: Stat;
  note?: string;
}

/** One line of the target table. */
export interface Check {
  name: string;
  measured: string;
  required: string;
  /** measured / required for "× faster"; median / limit for "< limit". */
  ratio: number;
  /** 'met', 'MISSED', 'info' or what else the benchmark says. */
  verdict: string;
  note?: string;
}

export interface Results<C extends Check> {
  rows: Row[];
  checks: C[];
  /** Adds a figure (the statistics of `xs`, or `xs` itself); returns its statistics. */
  record(figure: string, xs: number[] | Stat, note?: string, cpu?: number[]): Stat;
  /** The figure table and its notes, then the target table and its notes. */
  print(options?: { cpuColumn?: boolean }): void;
}

export function results<C extends Check = Check>(): Results<C> {
  const rows: Row[] = [];
  const checks: C[] = [];
  const record = (figure: string, xs: number[] | Stat, note?: string, cpu?: number[]): Stat => {
    const s = Array.isArray(xs) ? stat(xs) : xs;
    rows.push(cpu ? { figure, stat: s, note, cpu: stat(cpu) } : { figure, stat: s, note });
    return s;
  };
  const print = ({ cpuColumn = false } = {}): void => {
    const head = ['figure', 'median ms', 'min–max ms', 'runs'];
    if (cpuColumn) head.push('CPU ms');
    table(
      head,
      rows.map((r) => {
        const cells = [r.figure, fmt(r.stat.median), r.stat.n ? `${fmt(r.stat.min)}–${fmt(r.stat.max)}` : 'derived', r.stat.n ? String(r.stat.n) : ''];
        if (cpuColumn) cells.push(r.cpu ? fmt(r.cpu.median) : '');
        return cells;
      }),
      new Set(cpuColumn ? [1, 2, 3, 4] : [1, 2, 3]),
    );
    const notes = rows.filter((r) => r.note);
    if (notes.length) {
      console.log('');
      for (const r of notes) console.log(`  ${r.figure.trim()}: ${r.note}`);
    }
    console.log('');
    table(
      ['target', 'measured', 'required', 'ratio', 'verdict'],
      checks.map((c) => [c.name, c.measured, c.required, c.ratio.toFixed(2), c.verdict]),
      new Set([1, 3]),
    );
    const cNotes = checks.filter((c) => c.note);
    if (cNotes.length) {
      console.log('');
      for (const c of cNotes) console.log(`  ${c.name}: ${c.note}`);
    }
  };
  return { rows, checks, record, print };
}

// ---------------------------------------------------------------------------------------
// The machine and its load

/** The 1, 5 and 15 minute load averages, two decimals each. */
export const loadAvg = (separator = ' '): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(separator);

const loads: string[] = [];

/** Remembers the load averages at `when`, for printLoads. */
export function noteLoad(when: string): void {
  loads.push(`${when} ${loadAvg()}`);
}

export function printLoads(): void {
  console.log(`load average (1/5/15 min): ${loads.join('; ')}`);
}

/** The load averages at start, with `busyNote` when the 1-minute one passes half the CPUs. */
export function printLoadAtStart(busyNote = 'the machine is busy; figures will be slower and noisier'): void {
  const busy = os.loadavg()[0]! > os.availableParallelism() / 2;
  console.log(`load average (1/5/15 min) at start: ${loadAvg()}${busy ? ` — ${busyNote}` : ''}`);
}

/** "machine: nproc N, CPU model, memory, platform release". */
export function printMachine(): void {
  const cpus = os.cpus();
  console.log(`machine: nproc ${os.availableParallelism()}, ${cpus[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.release()}`);
}

/** A command's trimmed output; on failure the first line of what it printed. */
export function commandOutput(argv: string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    return `${err.stdout ?? ''}${err.stderr ?? ''}`.trim().split('\n')[0] ?? '?';
  }
}

/** The type of the filesystem holding `path` (df), '?' when df cannot say. */
export function fsType(path: string): string {
  try {
    return execFileSync('df', ['--output=fstype', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').at(-1) ?? '?';
  } catch {
    return '?';
  }
}

/** The SQLite version better-sqlite3 carries (loaded here only when asked). */
export function sqliteVersion(): string {
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  const mem = new Database(':memory:');
  const v = (mem.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  mem.close();
  return v;
}

/** `ssh -V` (it prints to standard error). */
export const sshVersion = (): string => execFileSync('sh', ['-c', 'ssh -V 2>&1'], { encoding: 'utf8' }).trim();

// ---------------------------------------------------------------------------------------
// Clean-up, on every way out, and the run itself

/** Run in reverse order at the end, on failure and on SIGINT/SIGTERM. */
export const cleanups: Array<() => Promise<void> | void> = [];
let cleaning: Promise<void> | undefined;

/**
 * Runs the clean-ups once; a second call (main failing because Ctrl-C's clean-up closed
 * its shell) waits for the first to finish instead of letting the process exit under it.
 */
export function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`clean-up: ${(e as Error).message}`);
      }
    }
  })();
  return cleaning;
}

/** A fresh directory under the temp dir, removed at the end. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(os.tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `thing` with a dispose() that runs `dispose` once, now or at the end, whichever comes first. */
export function disposedAtEnd<T extends object>(thing: T, dispose: () => Promise<void>): T & { dispose(): Promise<void> } {
  let disposed = false;
  const once = async () => {
    if (disposed) return;
    disposed = true;
    await dispose();
  };
  cleanups.push(once);
  return Object.assign(thing, { dispose: once });
}

/**
 * Runs a benchmark's main(): clean-up on SIGINT/SIGTERM, at the end and on failure
 * ("benchmark failed: …", status 2); exits with main's status.
 */
export async function runBench(main: () => Promise<number>): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  let status = 1;
  try {
    status = await main();
  } catch (e) {
    console.error(`\nbenchmark failed: ${(e as Error).stack ?? e}`);
    status = 2;
  } finally {
    await cleanUp();
  }
  // The pty module and the pool may hold the loop open.
  setImmediate(() => process.exit(status));
}

// ---------------------------------------------------------------------------------------
// Test hosts and the tracer (putcrt, cron)

/**
 * Runs a command on a test host, as site.onHost does (its mount and network namespaces),
 * but with standard input closed: onHost writes its input after spawning, and a command
 * that exits without reading it (cat FILE) races that write into an unhandled EPIPE.
 */
export function onHost(h: TestHost, argv: string[]): Promise<string> {
  if (!h.sshd?.pid) throw new Error(`${h.name} is not running`);
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', ['-t', String(h.sshd!.pid), '-m', '-n', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${argv.join(' ')} on ${h.name}: status ${code}: ${stderr.trim()}`))));
  });
}

/** `ip netns list`, trimmed. */
export const netnsList = (): string => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).trim();

/** `pgrep -a sshd`, trimmed; '' when there is none. */
export function sshdProcesses(): string {
  try {
    return execFileSync('pgrep', ['-a', 'sshd'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** The events putcrt-trace.js wrote to `file`; none when there is no file. */
export function readTrace(file: string): TraceEvent[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TraceEvent);
}

/** Which trace events make up each phase of a host's deployment. */
export const TRACE_PICK = {
  guardIp: (e: TraceEvent) => e.ev === 'guard' && e.what!.startsWith('ip '),
  guardIptables: (e: TraceEvent) => e.ev === 'guard' && e.what!.startsWith('iptables'),
  connect: (e: TraceEvent) => e.ev === 'connect',
  mkdir: (e: TraceEvent) => e.ev === 'exec' && e.what === 'mkdir',
  rm: (e: TraceEvent) => e.ev === 'exec' && e.what === 'rm',
  sftp: (e: TraceEvent) => e.ev === 'sftp',
  write: (e: TraceEvent) => e.ev === 'write',
  install: (e: TraceEvent) => e.ev === 'exec' && e.what === 'install',
  session: (e: TraceEvent) => e.ev === 'session',
};

// ---------------------------------------------------------------------------------------
// Fixture certificates (cert-fixtures, cron-fixtures): keys by Node on the libuv pool,
// certificates by an EC P-256 CA with @peculiar/x509 on WebCrypto

/** A fixture CA's signing key and name. */
export interface SigningCa {
  key: CryptoKey;
  name: string;
}

let x509lib: typeof X509 | undefined;

/** @peculiar/x509 on Node's WebCrypto, loaded on first use (as src/x509/request.ts does). */
async function x509(): Promise<typeof X509> {
  if (!x509lib) {
    x509lib = await import('@peculiar/x509');
    x509lib.cryptoProvider.set(webcrypto as unknown as Crypto);
  }
  return x509lib;
}

export const newEcKey = async (): Promise<KeyObject> => (await generateKeyPairP('ec', { namedCurve: 'prime256v1' })).privateKey;

export const newRsaKey = async (): Promise<KeyObject> => (await generateKeyPairP('rsa', { modulusLength: 2048, publicExponent: 0x10001 })).privateKey;

/** The CA in root/ca (ca-key.pk8, ca.pem), made on first use. */
export async function loadOrMakeCa(root: string, name: string): Promise<SigningCa> {
  const x = await x509();
  const dir = join(root, 'ca');
  const keyFile = join(dir, 'ca-key.pk8');
  const certFile = join(dir, 'ca.pem');
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  if (existsSync(keyFile) && existsSync(certFile)) {
    return { key: (await webcrypto.subtle.importKey('pkcs8', readFileSync(keyFile), alg, false, ['sign'])) as CryptoKey, name };
  }
  mkdirSync(dir, { recursive: true });
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x.X509CertificateGenerator.createSelfSigned({
    name,
    keys,
    notBefore: new Date(Date.now() - 400 * DAY),
    notAfter: new Date(Date.now() + 20 * 365 * DAY),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [new x.BasicConstraintsExtension(true, 0, true), new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true)],
  });
  writeFileSync(`${keyFile}.tmp`, Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), { mode: 0o600 });
  writeFileSync(certFile, cert.toString('pem'));
  renameSync(`${keyFile}.tmp`, keyFile);
  return { key: keys.privateKey, name };
}

/**
 * Pair i's not-after, counted from `base`: when i % dueEvery === dueAt 8–29 days out (due
 * within 30 days), otherwise 45–824 days.
 */
export function fixtureNotAfter(i: number, base: number, dueEvery: number, dueAt: number): Date {
  const days = i % dueEvery === dueAt ? 8 + ((i * 7919) % 22) : 45 + ((i * 104_729) % 780);
  return new Date(base + days * DAY + ((i * 3_600_000) % DAY));
}

/** The DER SubjectPublicKeyInfo of a private key. */
export const spkiOf = (key: KeyObject): Uint8Array<ArrayBuffer> => new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));

/**
 * A host certificate for `spki` signed by `ca`: CN = host, the DNS names, the extended
 * key usages; pair i's not-before lies a pseudo-random while before `base` (made at) and
 * at least 90 days before `notAfter`.
 */
export async function signHostCert(
  ca: SigningCa,
  spki: Uint8Array<ArrayBuffer>,
  host: string,
  cert: { i: number; base: number; notAfter: Date; usages: Array<'serverAuth' | 'clientAuth'>; dnsNames: string[] },
): Promise<string> {
  const x = await x509();
  const { i, base, notAfter } = cert;
  const notBefore = new Date(Math.min(base - DAY, notAfter.getTime() - 90 * DAY) - ((i * 7_777_777) % (200 * DAY)));
  const signed = await x.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    subject: `CN=${host}, O=passtore bench, DC=example, DC=org`,
    issuer: ca.name,
    notBefore,
    notAfter,
    publicKey: spki,
    signingKey: ca.key,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x.BasicConstraintsExtension(false, undefined, true),
      new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyEncipherment, true),
      new x.ExtendedKeyUsageExtension(cert.usages.map((u) => x.ExtendedKeyUsage[u])),
      new x.SubjectAlternativeNameExtension(cert.dnsNames.map((value) => ({ type: 'dns' as const, value }))),
    ],
  });
  return signed.toString('pem');
}

/** What signPairs needs of a fixture set. */
export interface PairsToSign<P extends { host: string; keyFile: string; notAfter: string }> {
  /** The set directory; keyFile is relative to it. */
  dir: string;
  pairs: P[];
  certsGeneratedAt: string;
  certSeconds: number;
}

/**
 * Signs (or re-signs) a certificate for every pair, 16 at once, with the key in `keys` or
 * else the one on disk; `write` puts each one in place, and the pair's notAfter, the set's
 * certsGeneratedAt and certSeconds are set.
 */
export async function signPairs<P extends { host: string; keyFile: string; notAfter: string }>(
  ca: SigningCa,
  s: PairsToSign<P>,
  keys: KeyObject[] | undefined,
  how: {
    label: string;
    notAfter: (i: number, base: number) => Date;
    usages: Array<'serverAuth' | 'clientAuth'>;
    dnsNames: (host: string) => string[];
    write: (p: P, pem: string) => void;
  },
): Promise<void> {
  const base = Date.now();
  const t0 = performance.now();
  await pool(
    s.pairs.length,
    16,
    async (i) => {
      const p = s.pairs[i]!;
      const key = keys?.[i] ?? createPrivateKey(readFileSync(join(s.dir, p.keyFile)));
      const notAfter = how.notAfter(i, base);
      const pem = await signHostCert(ca, spkiOf(key), p.host, { i, base, notAfter, usages: how.usages, dnsNames: how.dnsNames(p.host) });
      how.write(p, pem);
      p.notAfter = notAfter.toISOString();
    },
    progressPrinter(how.label, s.pairs.length),
  );
  s.certsGeneratedAt = new Date(base).toISOString();
  s.certSeconds = (performance.now() - t0) / 1000;
}

/** Whether certificates made at `generatedAt` are more than `days` old. */
export const olderThan = (generatedAt: string, days: number): boolean => Date.now() - Date.parse(generatedAt) > days * DAY;

/** `dir`.partial, emptied, with the 16 sub-directories 0–f; commitDir moves it into place. */
export function partialDir(dir: string): string {
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  for (let b = 0; b < 16; b++) mkdirSync(join(tmp, b.toString(16)), { recursive: true });
  return tmp;
}

/** Replaces `dir` by the finished `tmp`. */
export function commitDir(tmp: string, dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/** Writes JSON through a temp file and a rename, so a reader never sees half of it. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(value));
  renameSync(`${path}.tmp`, path);
}
