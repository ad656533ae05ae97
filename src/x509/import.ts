/**
 * Bulk import (`importcert DIR`): read every file below a directory, find every
 * certificate and key in them whatever the file names, pair them by public key in one
 * pass (a hash map: linear time), and report what was added, what was left unmatched and
 * what could not be read. Encrypted keys and PKCS#12 files ask for their passphrase.
 */
import { lstatSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { Worker } from 'node:worker_threads';
import { X509Certificate } from 'node:crypto';
import { Cancel } from '../cancel.js';
import { PasstoreError } from '../errors.js';
import { hostsOfCertificate, type CertFacts } from './certificate.js';
import type { KeyFacts } from './keys.js';
import type { Passphrases } from './passphrases.js';
import { readObjects, type FileContents, type Locked } from './pem.js';

export interface FileProblem {
  file: string;
  reason: string;
}

/** A certificate found in a file, as plain data (it crosses from a reader thread). */
export interface CertRecord {
  file: string;
  facts: CertFacts;
  /** A CA certificate (basicConstraints CA:TRUE): a chain file, not a host's. */
  ca: boolean;
  /** The host it is for (the first of `hosts`). */
  host: string | undefined;
  /** The hosts it names, best first (hostsOfCertificate): importcert prefers one already in the vault. */
  hosts: string[];
  /** Self-signed (its issuer is its subject). */
  selfSigned: boolean;
  der: Buffer;
}

/** A certificate found, with its X509Certificate parsed again only when asked for. */
export class FoundCert implements CertRecord {
  readonly file: string;
  readonly facts: CertFacts;
  readonly ca: boolean;
  readonly host: string | undefined;
  readonly hosts: string[];
  readonly selfSigned: boolean;
  readonly der: Buffer;
  #cert: X509Certificate | undefined;

  constructor(r: CertRecord) {
    ({ file: this.file, facts: this.facts, ca: this.ca, host: this.host, hosts: this.hosts, selfSigned: this.selfSigned } = r);
    // From a reader thread a Buffer arrives as a plain Uint8Array.
    this.der = Buffer.from(r.der.buffer, r.der.byteOffset, r.der.byteLength);
  }

  get cert(): X509Certificate {
    return (this.#cert ??= new X509Certificate(this.der));
  }
}

/** A private key found: PKCS#8 DER, secret (wiped once stored, or by `wipeScan`). */
export interface FoundKey {
  file: string;
  pkcs8: Buffer;
  facts: KeyFacts;
}

export interface Scan {
  certs: FoundCert[];
  keys: FoundKey[];
  /** Encrypted keys and PKCS#12 files, waiting for their passphrase. */
  locked: Array<{ file: string; locked: Locked }>;
  unreadable: FileProblem[];
  files: number;
}

/** What one file held: plain data, so that a reader thread can hand it over. */
export interface FileResult {
  certs: CertRecord[];
  keys: FoundKey[];
  locked: Array<{ file: string; locked: Locked }>;
  unreadable: FileProblem[];
}

/** A regular file found by the walk, to be read. */
export interface Candidate {
  full: string;
  rel: string;
  size: number;
}

const MAX_FILE = 1024 * 1024;
/** Below this many files the reading stays in this thread (a reader thread costs ~40 ms to start). */
const THREADS_FROM = 400;

/** Reads one file and parses what it holds; never throws (a problem is a result). */
export function readCandidate(c: Candidate): FileResult {
  const out: FileResult = { certs: [], keys: [], locked: [], unreadable: [] };
  if (c.size > MAX_FILE) {
    out.unreadable.push({ file: c.rel, reason: 'larger than 1 MiB' });
    return out;
  }
  let data: Buffer;
  try {
    data = readFileSync(c.full);
  } catch (e) {
    out.unreadable.push({ file: c.rel, reason: `not readable (${(e as NodeJS.ErrnoException).code})` });
    return out;
  }
  const contents = readObjects(data);
  data.fill(0);
  addContents(out, c.rel, contents);
  return out;
}

/** Files what one file (or the PKCS#12 file it was) held into `out`. */
function addContents(out: FileResult, file: string, { objects, problems }: FileContents): void {
  for (const p of problems) out.unreadable.push({ file, reason: p });
  for (const o of objects) {
    if (o.kind === 'certificate') {
      const hosts = hostsOfCertificate(o.cert, o.facts);
      out.certs.push({ file, facts: o.facts, ca: o.cert.ca, host: hosts[0], hosts, selfSigned: o.facts.subject === o.facts.issuer, der: o.cert.raw });
    } else if (o.kind === 'key') out.keys.push({ file, pkcs8: o.key.export({ type: 'pkcs8', format: 'der' }), facts: o.facts });
    else out.locked.push({ file, locked: o.locked });
  }
}

/** Finds every regular file below `dir` (symbolic links to files followed, never to directories). */
async function walkDirectory(dir: string, cancel: Cancel): Promise<{ candidates: Candidate[]; unreadable: FileProblem[] }> {
  const candidates: Candidate[] = [];
  const unreadable: FileProblem[] = [];
  let top: Stats;
  try {
    top = statSync(dir);
  } catch (e) {
    throw new PasstoreError('io', `cannot read ${dir} (${(e as NodeJS.ErrnoException).code})`);
  }
  if (!top.isDirectory()) throw new PasstoreError('io', `${dir} is not a directory`);
  const seen = new Set<string>();
  const walk = async (path: string): Promise<void> => {
    const st = statSync(path);
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (e) {
      unreadable.push({ file: relative(dir, path) || '.', reason: `directory not readable (${(e as NodeJS.ErrnoException).code})` });
      return;
    }
    for (const name of names) {
      await cancel.point();
      const full = join(path, name);
      const rel = relative(dir, full);
      let st2: Stats;
      try {
        st2 = lstatSync(full);
        if (st2.isSymbolicLink()) {
          const target = statSync(full);
          if (target.isDirectory()) {
            unreadable.push({ file: rel, reason: 'symbolic link to a directory, not followed' });
            continue;
          }
          st2 = target;
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        unreadable.push({ file: rel, reason: code === 'ELOOP' ? 'symbolic link loop' : code === 'ENOENT' ? 'dangling symbolic link' : `not readable (${code})` });
        continue;
      }
      if (st2.isDirectory()) await walk(full);
      else if (st2.isFile()) candidates.push({ full, rel, size: st2.size });
      else unreadable.push({ file: rel, reason: 'not a regular file' });
    }
  };
  await walk(dir);
  return { candidates, unreadable };
}

export interface ScanOptions {
  /** Called with the number of files read so far, every 500 files. */
  progress?: (files: number) => void;
  /**
   * Reader threads (default: one per core, at most 4, from 400 files on; below that the
   * files are read in this thread, as with 1). OpenSSL's parsing is the cost of an import (~0.2 ms a certificate or
   * key), and it runs in parallel in worker threads; only plain data comes back.
   */
  threads?: number;
  /** Ctrl-C: the walk and the reading stop (reader threads ended, keys read wiped) with PasstoreError('cancelled'). */
  signal?: AbortSignal;
}

/**
 * Reads every regular file below `dir` and parses what it holds. The walk is done here;
 * the files of a large directory are read and parsed by reader threads, each over a
 * contiguous share, and the results are put back in the walk's order.
 */
export async function scanDirectory(dir: string, options: ScanOptions = {}): Promise<Scan> {
  const cancel = new Cancel(options.signal, `cancelled while reading ${dir}`);
  const { candidates, unreadable } = await walkDirectory(dir, cancel);
  const threads = Math.max(1, Math.min(options.threads ?? (candidates.length < THREADS_FROM ? 1 : Math.min(availableParallelism(), 4)), candidates.length));
  const results: FileResult[] = [];
  let done = 0;
  const tick = (n: number) => {
    const before = done;
    done += n;
    if (Math.floor(done / 500) > Math.floor(before / 500)) options.progress?.(done - (done % 500));
  };
  if (threads === 1) {
    try {
      for (const c of candidates) {
        await cancel.point();
        results.push(readCandidate(c));
        tick(1);
      }
    } catch (e) {
      for (const f of results) for (const k of f.keys) k.pkcs8.fill(0);
      throw e;
    }
  } else {
    const share = Math.ceil(candidates.length / threads);
    const workers: Worker[] = [];
    const parts = Array.from({ length: threads }, (_, i) => candidates.slice(i * share, (i + 1) * share));
    const settled = await Promise.allSettled(parts.map((p) => readInThread(p, tick, workers, cancel)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // The keys the other threads read are wiped, and the threads still reading stopped.
      for (const r of settled) if (r.status === 'fulfilled') for (const f of r.value) for (const k of f.keys) k.pkcs8.fill(0);
      await Promise.all(workers.map((w) => w.terminate()));
      throw failed.reason;
    }
    for (const r of settled) if (r.status === 'fulfilled') results.push(...r.value);
  }
  const scan: Scan = { certs: [], keys: [], locked: [], unreadable: [], files: candidates.length };
  scan.unreadable.push(...unreadable);
  for (const r of results) {
    for (const c of r.certs) scan.certs.push(new FoundCert(c));
    scan.keys.push(...r.keys);
    // From a reader thread a Buffer arrives as a plain Uint8Array.
    for (const l of r.locked) scan.locked.push({ file: l.file, locked: { format: l.locked.format, data: Buffer.from(l.locked.data.buffer, l.locked.data.byteOffset, l.locked.data.byteLength) } });
    scan.unreadable.push(...r.unreadable);
  }
  return scan;
}

const READER = new URL('./import-reader.js', import.meta.url);

/** Reads and parses `part` in a worker thread; private keys come back in transferred buffers. */
function readInThread(part: Candidate[], tick: (n: number) => void, workers: Worker[], cancel: Cancel): Promise<FileResult[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(READER, { workerData: { part } });
    workers.push(worker);
    let settled = false;
    // Ctrl-C: this thread is ended where it is (what it read has not left it) and the scan fails.
    const onAbort = () => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      reject(new PasstoreError('cancelled', cancel.message));
    };
    cancel.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: { progress: number } | { results: FileResult[] }) => {
      if ('progress' in m) tick(m.progress);
      else {
        if (settled) {
          for (const r of m.results) for (const k of r.keys) new Uint8Array(k.pkcs8.buffer, k.pkcs8.byteOffset, k.pkcs8.byteLength).fill(0);
          return;
        }
        settled = true;
        cancel.signal?.removeEventListener('abort', onAbort);
        for (const r of m.results) for (const k of r.keys) k.pkcs8 = Buffer.from(k.pkcs8.buffer, k.pkcs8.byteOffset, k.pkcs8.byteLength);
        resolve(m.results);
      }
    });
    worker.on('error', (e: unknown) => {
      if (settled) return;
      settled = true;
      cancel.signal?.removeEventListener('abort', onAbort);
      const why = String((e as Error | undefined)?.message ?? e).split('\n')[0]!.slice(0, 200);
      reject(new PasstoreError('io', `reading the files failed in a reader thread (${why})`, { cause: e }));
    });
    worker.on('exit', (code) => {
      cancel.signal?.removeEventListener('abort', onAbort);
      if (!settled) reject(new PasstoreError('io', `a reader thread ended (status ${code}) before it had read its files`));
    });
  });
}

/** Wipes the private keys a scan still holds (those not stored). */
export function wipeScan(scan: Scan): void {
  for (const k of scan.keys) k.pkcs8.fill(0);
}

/**
 * Opens the encrypted keys and PKCS#12 files found, asking for each passphrase (an empty
 * answer skips the file); what they held joins the scan as if read from separate files.
 */
export async function unlockLocked(scan: Scan, passphrases: Passphrases, signal?: AbortSignal): Promise<void> {
  const out: FileResult = { certs: [], keys: [], locked: [], unreadable: [] };
  const cancel = new Cancel(signal, 'cancelled while opening the encrypted files');
  try {
    for (const [i, l] of scan.locked.entries()) {
      await cancel.point();
      const opened = await passphrases.open(l.file, l.locked, scan.locked.length - i - 1);
      if (opened.ok) addContents(out, l.file, opened.contents);
      else out.unreadable.push({ file: l.file, reason: opened.reason });
    }
  } catch (e) {
    // Cancelled (Ctrl-C, or at a passphrase prompt): the keys opened so far are wiped.
    for (const k of out.keys) k.pkcs8.fill(0);
    throw e;
  }
  for (const c of out.certs) scan.certs.push(new FoundCert(c));
  scan.keys.push(...out.keys);
  scan.unreadable.push(...out.unreadable);
  scan.locked = [];
}

export interface Pair {
  host: string;
  cert: FoundCert;
  key: FoundKey;
}

export interface Pairing {
  pairs: Pair[];
  /** CA certificates (chain files): not host certificates, passed over. */
  skipped: FileProblem[];
  /** Pairs whose certificate is marked as a CA (typically self-signed by openssl req -x509): said so in the report. */
  selfSignedCas: Pair[];
  /** Certificates with no key in the directory (the caller may find it in the vault). */
  lonelyCerts: FoundCert[];
  unmatched: FileProblem[];
}

/** Pairs certificates with keys by public key, in one pass over each. */
export function pairByKey(scan: Scan, options: { force?: boolean; now?: number } = {}): Pairing {
  const now = options.now ?? Date.now();
  const keys = new Map<string, FoundKey>();
  const unmatched: FileProblem[] = [];
  const skipped: FileProblem[] = [];
  for (const k of scan.keys) {
    if (keys.has(k.facts.spkiSha256)) unmatched.push({ file: k.file, reason: `the same private key as ${keys.get(k.facts.spkiSha256)!.file}` });
    else keys.set(k.facts.spkiSha256, k);
  }
  // The newest certificate of each key wins; older ones are reported.
  const best = new Map<string, FoundCert>();
  for (const c of scan.certs) {
    // A CA certificate is a chain file's, unless a key read with it makes it a host's own
    // (a self-signed certificate made by `openssl req -x509` is marked CA:TRUE).
    if (c.ca && !keys.has(c.facts.spkiSha256)) {
      skipped.push({ file: c.file, reason: `CA certificate ${c.facts.subject}, passed over` });
      continue;
    }
    const prev = best.get(c.facts.spkiSha256);
    if (!prev) best.set(c.facts.spkiSha256, c);
    else if (prev.facts.fingerprintSha256 === c.facts.fingerprintSha256) unmatched.push({ file: c.file, reason: `the same certificate as ${prev.file}` });
    else if (Date.parse(c.facts.notAfter) > Date.parse(prev.facts.notAfter)) {
      unmatched.push({ file: prev.file, reason: `an older certificate for the key of ${c.file}` });
      best.set(c.facts.spkiSha256, c);
    } else unmatched.push({ file: c.file, reason: `an older certificate for the key of ${prev.file}` });
  }
  const pairs: Pair[] = [];
  const selfSignedCas: Pair[] = [];
  const lonelyCerts: FoundCert[] = [];
  const used = new Set<string>();
  for (const [spki, c] of best) {
    const key = keys.get(spki);
    const host = c.host;
    const refuse = (reason: string) => {
      unmatched.push({ file: c.file, reason });
      // The key of a refused certificate is reported too, with the reason.
      if (key) {
        used.add(spki);
        if (key.file !== c.file) unmatched.push({ file: key.file, reason: `private key (${key.facts.type}) of ${c.file}, not imported: ${reason}` });
      }
    };
    if (!host) {
      refuse(`${c.ca ? 'CA ' : ''}certificate ${c.facts.subject || '(empty subject)'} names no host`);
      continue;
    }
    if (Date.parse(c.facts.notAfter) <= now && !options.force) {
      refuse(`certificate for ${host} expired on ${c.facts.notAfter.slice(0, 10)} (use --force)`);
      continue;
    }
    if (!key) {
      lonelyCerts.push(c);
      continue;
    }
    // The key check: the SPKI of the key, derived by OpenSSL from the private key itself,
    // is byte for byte the certificate's (what X509_check_private_key compares).
    used.add(spki);
    pairs.push({ host, cert: c, key });
    if (c.ca) selfSignedCas.push(pairs.at(-1)!);
  }
  for (const [spki, k] of keys) {
    if (!used.has(spki)) unmatched.push({ file: k.file, reason: `private key (${k.facts.type}) without its certificate` });
  }
  pairs.sort((a, b) => a.host.localeCompare(b.host) || a.cert.facts.notAfter.localeCompare(b.cert.facts.notAfter));
  return { pairs, skipped, selfSignedCas, lonelyCerts, unmatched };
}
