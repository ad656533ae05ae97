/**
 * Bulk import (`importcert DIR`): read every file below a directory, find every
 * certificate and key in them whatever the file names, pair them by public key in one
 * pass (a hash map: linear time), and report what was added, what was left unmatched and
 * what could not be read. Encrypted keys ask for their passphrase.
 */
import { lstatSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';
import type { KeyObject, X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { isFqdn } from '../names.js';
import type { Secret } from '../secret.js';
import type { CertFacts } from './certificate.js';
import type { KeyFacts } from './keys.js';
import { decryptKey, readObjects } from './pem.js';

export interface FileProblem {
  file: string;
  reason: string;
}

export interface FoundCert {
  file: string;
  cert: X509Certificate;
  facts: CertFacts;
}

export interface FoundKey {
  file: string;
  key: KeyObject;
  facts: KeyFacts;
}

export interface Scan {
  certs: FoundCert[];
  keys: FoundKey[];
  encrypted: Array<{ file: string; pem: string }>;
  unreadable: FileProblem[];
  files: number;
}

const MAX_FILE = 1024 * 1024;

/** Reads every regular file below `dir` (symbolic links to files followed, never to directories). */
export function scanDirectory(dir: string, progress?: (files: number) => void): Scan {
  const scan: Scan = { certs: [], keys: [], encrypted: [], unreadable: [], files: 0 };
  let top: Stats;
  try {
    top = statSync(dir);
  } catch (e) {
    throw new PasstoreError('io', `cannot read ${dir} (${(e as NodeJS.ErrnoException).code})`);
  }
  if (!top.isDirectory()) throw new PasstoreError('io', `${dir} is not a directory`);
  const seen = new Set<string>();
  const walk = (path: string): void => {
    const st = statSync(path);
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (e) {
      scan.unreadable.push({ file: relative(dir, path) || '.', reason: `directory not readable (${(e as NodeJS.ErrnoException).code})` });
      return;
    }
    for (const name of names) {
      const full = join(path, name);
      const rel = relative(dir, full);
      let st2: Stats;
      try {
        st2 = lstatSync(full);
        if (st2.isSymbolicLink()) {
          const target = statSync(full);
          if (target.isDirectory()) {
            scan.unreadable.push({ file: rel, reason: 'symbolic link to a directory, not followed' });
            continue;
          }
          st2 = target;
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        scan.unreadable.push({ file: rel, reason: code === 'ELOOP' ? 'symbolic link loop' : code === 'ENOENT' ? 'dangling symbolic link' : `not readable (${code})` });
        continue;
      }
      if (st2.isDirectory()) walk(full);
      else if (st2.isFile()) readOne(full, rel, st2.size);
      else scan.unreadable.push({ file: rel, reason: 'not a regular file' });
    }
  };
  const readOne = (full: string, rel: string, size: number): void => {
    scan.files++;
    if (scan.files % 500 === 0) progress?.(scan.files);
    if (size > MAX_FILE) {
      scan.unreadable.push({ file: rel, reason: 'larger than 1 MiB' });
      return;
    }
    let data: Buffer;
    try {
      data = readFileSync(full);
    } catch (e) {
      scan.unreadable.push({ file: rel, reason: `not readable (${(e as NodeJS.ErrnoException).code})` });
      return;
    }
    const { objects, problems } = readObjects(data);
    data.fill(0);
    for (const p of problems) scan.unreadable.push({ file: rel, reason: p });
    for (const o of objects) {
      if (o.kind === 'certificate') scan.certs.push({ file: rel, cert: o.cert, facts: o.facts });
      else if (o.kind === 'key') scan.keys.push({ file: rel, key: o.key, facts: o.facts });
      else scan.encrypted.push({ file: rel, pem: o.pem });
    }
  };
  walk(dir);
  return scan;
}

/** Decrypts the encrypted keys found, asking for each passphrase; an empty answer skips. */
export async function unlockEncryptedKeys(scan: Scan, ask: ((file: string) => Promise<Secret>) | undefined): Promise<void> {
  for (const e of scan.encrypted) {
    if (!ask) {
      scan.unreadable.push({ file: e.file, reason: 'encrypted key: its passphrase cannot be asked from a script' });
      continue;
    }
    const passphrase = await ask(e.file);
    try {
      if (passphrase.length === 0) {
        scan.unreadable.push({ file: e.file, reason: 'encrypted key skipped (no passphrase given)' });
        continue;
      }
      const { key, facts } = decryptKey(e.pem, passphrase.bytes());
      scan.keys.push({ file: e.file, key, facts });
    } catch (err) {
      scan.unreadable.push({ file: e.file, reason: err instanceof PasstoreError ? err.message : 'encrypted key not readable' });
    } finally {
      passphrase.wipe();
    }
  }
  scan.encrypted = [];
}

/** The host a certificate is for: its CN when that is a host name it names, else its first DNS name. */
export function hostOfCertificate(c: FoundCert): string | undefined {
  const cn = /\/CN=([^/]+)$/.exec(c.facts.subject)?.[1]?.toLowerCase();
  if (cn && isFqdn(cn) && c.cert.checkHost(cn, { wildcards: false }) !== undefined) return cn;
  return c.facts.sans.find((s) => isFqdn(s));
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
    if (c.cert.ca) {
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
  const lonelyCerts: FoundCert[] = [];
  const used = new Set<string>();
  for (const [spki, c] of best) {
    const key = keys.get(spki);
    const host = hostOfCertificate(c);
    if (!host) {
      unmatched.push({ file: c.file, reason: `certificate ${c.facts.subject} names no host` });
      if (key) used.add(spki);
      continue;
    }
    if (Date.parse(c.facts.notAfter) <= now && !options.force) {
      unmatched.push({ file: c.file, reason: `certificate for ${host} expired on ${c.facts.notAfter.slice(0, 10)} (use --force)` });
      if (key) used.add(spki);
      continue;
    }
    if (!key) {
      lonelyCerts.push(c);
      continue;
    }
    used.add(spki);
    if (!c.cert.checkPrivateKey(key.key)) {
      unmatched.push({ file: c.file, reason: `certificate does not verify against the key in ${key.file}` });
      continue;
    }
    pairs.push({ host, cert: c, key });
  }
  for (const [spki, k] of keys) {
    if (!used.has(spki)) unmatched.push({ file: k.file, reason: `private key (${k.facts.type}) without its certificate` });
  }
  pairs.sort((a, b) => a.host.localeCompare(b.host) || a.cert.facts.notAfter.localeCompare(b.cert.facts.notAfter));
  return { pairs, skipped, lonelyCerts, unmatched };
}
