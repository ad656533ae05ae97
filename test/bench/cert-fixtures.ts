/**
 * Fixtures for certificates.bench.ts, generated once and cached outside the repository
 * (default /var/tmp/passtore-bench-fixtures, or $PASSTORE_BENCH_FIXTURES), reused when
 * present:
 *
 *   ec-5000     5,000 host key + certificate pairs, EC P-256 keys   (10,000 PEM files)
 *   ec-1000     the first 1,000 pairs of ec-5000, copied            ( 2,000 PEM files)
 *   ec-5000-b   5,000 more pairs for other hosts, EC P-256 keys     (10,000 PEM files)
 *   rsa-1000    1,000 pairs with RSA-2048 keys (passtore's default key type), as a
 *               cross-check of what the key type costs             ( 2,000 PEM files)
 *
 * Every pair has its own key (importcert pairs by public key), generated with Node's
 * crypto.generateKeyPair on the libuv pool. Certificates are signed by a fixture CA
 * (EC P-256) with @peculiar/x509 on WebCrypto: CN and subjectAltName DNS = the host.
 * One pair in ten expires 8–29 days after the certificates were made, the rest 45–824
 * days after, so each 5,000 set has 500 certificates due within 30 days. Certificates are
 * re-signed (keys kept) when they are more than 7 days old, so none is ever expired and
 * the count due within 30 days stays put.
 *
 * File names are random and misleading (a key may be called x.crt): importcert ignores
 * names. Files sit in 16 sub-directories per set. Keys alternate between PKCS#8 and the
 * traditional encodings (SEC1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY").
 * Each set directory holds set.json (its manifest) only once it is complete; the
 * manifest is kept beside the directory, not in it, so importcert never reads it.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitDir, DAY, fixtureNotAfter, loadOrMakeCa, newEcKey, newRsaKey, olderThan, partialDir, pool, progressPrinter, signPairs, writeJsonAtomic, type SigningCa } from './bench-kit.js';

const FORMAT = 1;
/** Certificates older than this are re-signed (keys kept). */
const MAX_CERT_AGE_DAYS = 7;
const CA_NAME = 'CN=passtore bench fixture CA, O=passtore bench';

export type FixtureKeyType = 'ec-p256' | 'rsa-2048';

export interface FixturePair {
  host: string;
  /** Relative to the set directory. */
  certFile: string;
  keyFile: string;
  notAfter: string;
}

export interface FixtureSet {
  format: number;
  name: string;
  keyType: FixtureKeyType;
  dir: string;
  pairs: FixturePair[];
  keysGeneratedAt: string;
  certsGeneratedAt: string;
  /** One-time cost, as measured when this set was made. */
  keygenSeconds: number;
  certSeconds: number;
  /** For a copied subset: the set it was copied from, and that set's certificate time. */
  copiedFrom?: { name: string; certsGeneratedAt: string };
}

export interface Fixtures {
  root: string;
  sets: Record<'ec5000' | 'ec1000' | 'ec5000b' | 'rsa1000', FixtureSet>;
  /** What this call generated (empty when everything came from the cache). */
  generated: string[];
  /** Seconds spent generating in this call. */
  seconds: number;
}

const EXTENSIONS = ['.pem', '.crt', '.key', '.cer', '.txt', '', '.der', '.bak'];

function randomName(): string {
  const b = randomBytes(6);
  return `${b.toString('hex')}${EXTENSIONS[b[0]! % EXTENSIONS.length]}`;
}

function bucket(): string {
  return randomBytes(1).toString('hex')[0]!;
}

/** notAfter for pair i of a set, counted from `base`: one in ten within 8–29 days. */
const notAfterFor = (i: number, base: number): Date => fixtureNotAfter(i, base, 10, 3);

function keyPem(key: KeyObject, type: FixtureKeyType, i: number): string {
  if (i % 2 === 0) return key.export({ type: 'pkcs8', format: 'pem' }) as string;
  return key.export({ type: type === 'rsa-2048' ? 'pkcs1' : 'sec1', format: 'pem' }) as string;
}

/** Reads a set's manifest; its directory is taken as the one beside it (the cache may move). */
function readSet(path: string): FixtureSet | undefined {
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as FixtureSet;
    if (s.format !== FORMAT) return undefined;
    s.dir = path.replace(/\.json$/, '');
    return s;
  } catch {
    return undefined;
  }
}

function certsStale(s: FixtureSet): boolean {
  if (olderThan(s.certsGeneratedAt, MAX_CERT_AGE_DAYS)) return true;
  return s.pairs.some((p) => Date.parse(p.notAfter) < Date.now() + 2 * DAY);
}

/** Signs (or re-signs) every certificate of a set, under a new random name each. */
async function signSet(ca: SigningCa, s: FixtureSet, keys: KeyObject[] | undefined): Promise<void> {
  await signPairs(ca, s, keys, {
    label: `${s.name}: signing certificates`,
    notAfter: notAfterFor,
    usages: ['serverAuth', 'clientAuth'],
    dnsNames: (host) => [host, `${host.split('.')[0]!}-alias.example.org`],
    write: (p, pem) => {
      if (p.certFile) rmSync(join(s.dir, p.certFile), { force: true });
      const file = join(bucket(), randomName());
      p.certFile = file;
      writeFileSync(join(s.dir, file), pem);
    },
  });
}

async function makeSet(root: string, ca: SigningCa, name: string, keyType: FixtureKeyType, prefix: string, count: number): Promise<FixtureSet> {
  const dir = join(root, name);
  const tmp = partialDir(dir);
  const t0 = performance.now();
  // Each key is one job on the libuv pool; 8 in flight keeps the pool busy without
  // holding thousands of pending callbacks.
  const keys = await pool(
    count,
    8,
    () => (keyType === 'rsa-2048' ? newRsaKey() : newEcKey()),
    progressPrinter(`${name}: generating ${count} ${keyType} keys`, count),
  );
  const keygenSeconds = (performance.now() - t0) / 1000;
  const pairs: FixturePair[] = keys.map((k, i) => {
    const keyFile = join(bucket(), randomName());
    writeFileSync(join(tmp, keyFile), keyPem(k, keyType, i), { mode: 0o600 });
    return { host: `${prefix}-${String(i).padStart(5, '0')}.example.org`, certFile: '', keyFile, notAfter: '' };
  });
  const s: FixtureSet = { format: FORMAT, name, keyType, dir: tmp, pairs, keysGeneratedAt: new Date().toISOString(), certsGeneratedAt: '', keygenSeconds, certSeconds: 0 };
  await signSet(ca, s, keys);
  commitDir(tmp, dir);
  s.dir = dir;
  return s;
}

/** A copy of the first `count` pairs of `from`, with the same file names. */
function copySubset(root: string, from: FixtureSet, name: string, count: number): FixtureSet {
  const dir = join(root, name);
  const tmp = partialDir(dir);
  const pairs = from.pairs.slice(0, count).map((p) => ({ ...p }));
  for (const p of pairs) {
    copyFileSync(join(from.dir, p.certFile), join(tmp, p.certFile));
    copyFileSync(join(from.dir, p.keyFile), join(tmp, p.keyFile));
  }
  commitDir(tmp, dir);
  return {
    ...from,
    name,
    dir,
    pairs,
    keygenSeconds: 0,
    certSeconds: 0,
    copiedFrom: { name: from.name, certsGeneratedAt: from.certsGeneratedAt },
  };
}

export function defaultFixtureRoot(): string {
  return process.env.PASSTORE_BENCH_FIXTURES ?? '/var/tmp/passtore-bench-fixtures';
}

/** Loads the fixtures, generating or refreshing whatever is missing or stale. */
export async function ensureFixtures(root = defaultFixtureRoot()): Promise<Fixtures> {
  mkdirSync(root, { recursive: true });
  const t0 = performance.now();
  const generated: string[] = [];
  const ca = await loadOrMakeCa(root, CA_NAME);
  const full = async (name: string, keyType: FixtureKeyType, prefix: string, count: number): Promise<FixtureSet> => {
    const manifest = join(root, `${name}.json`);
    let s = readSet(manifest);
    if (s && s.pairs.length === count && s.keyType === keyType && existsSync(s.dir)) {
      if (!certsStale(s)) return s;
      console.log(`  ${name}: certificates made ${s.certsGeneratedAt} are stale; re-signing them (keys kept)`);
      await signSet(ca, s, undefined);
      writeJsonAtomic(manifest, s);
      generated.push(`${name} (certificates re-signed)`);
      return s;
    }
    s = await makeSet(root, ca, name, keyType, prefix, count);
    writeJsonAtomic(manifest, s);
    generated.push(`${name} (keys ${s.keygenSeconds.toFixed(0)} s, certificates ${s.certSeconds.toFixed(0)} s)`);
    return s;
  };
  const ec5000 = await full('ec-5000', 'ec-p256', 'wn', 5000);
  const ec5000b = await full('ec-5000-b', 'ec-p256', 'se', 5000);
  const rsa1000 = await full('rsa-1000', 'rsa-2048', 'db', 1000);
  const subsetManifest = join(root, 'ec-1000.json');
  let ec1000 = readSet(subsetManifest);
  if (!ec1000 || ec1000.copiedFrom?.certsGeneratedAt !== ec5000.certsGeneratedAt || !existsSync(ec1000.dir)) {
    ec1000 = copySubset(root, ec5000, 'ec-1000', 1000);
    writeJsonAtomic(subsetManifest, ec1000);
    generated.push('ec-1000 (copied from ec-5000)');
  }
  return { root, sets: { ec5000, ec1000, ec5000b, rsa1000 }, generated, seconds: (performance.now() - t0) / 1000 };
}

/** Fixture generation on its own: `node dist/test/bench/cert-fixtures.js`. */
if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await ensureFixtures();
  console.log(`fixtures in ${f.root}: ${f.generated.length ? f.generated.join('; ') : 'all cached'} (${f.seconds.toFixed(1)} s)`);
}
