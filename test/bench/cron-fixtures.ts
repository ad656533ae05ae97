/**
 * Fixtures for cron.bench.ts, generated once and cached outside the repository (default
 * /var/tmp/passtore-bench-cron, or $PASSTORE_BENCH_CRON_FIXTURES), reused when present:
 *
 *   pairs-10000/  10,000 host key + certificate pairs (EC P-256 keys), 20,000 PEM files in
 *                 16 sub-directories; exactly 500 (one in twenty) have their not-after 8–29
 *                 days after the certificates were made, the other 9,500 45–824 days.
 *   pairs-10000.json  the manifest (host, files, not-after of each pair), written beside
 *                 the directory once it is complete, so importcert never reads it.
 *   ca/           the EC P-256 CA that signed them (WebCrypto key, PKCS#8).
 *
 * Why not cert-fixtures.ts (certificates.bench.ts's cache): its sets have one pair in ten
 * due within 30 days, so its two 5,000-pair EC sets hold 1,000 due certificates among
 * 10,000, and this benchmark needs 500. Both follow the same recipe, shared in
 * bench-kit.ts (Node's generateKeyPair on the libuv pool, @peculiar/x509 on WebCrypto for
 * the certificates), each with its own schedule of dates and file layout.
 *
 * Certificates are re-signed (keys kept) when they are more than 7 days old, so the 500
 * stay due within 30 days and none is expired (the earliest is 8 days out when made).
 */
import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitDir, fixtureNotAfter, loadOrMakeCa, newEcKey, olderThan, partialDir, pool, progressPrinter, signPairs, writeJsonAtomic, type SigningCa } from './bench-kit.js';

const FORMAT = 1;
const MAX_CERT_AGE_DAYS = 7;
const CA_NAME = 'CN=passtore cron bench CA, O=passtore bench';
export const CRON_PAIRS = 10_000;
export const CRON_DUE_EVERY = 20;

export interface CronPair {
  host: string;
  /** Relative to the set directory. */
  certFile: string;
  keyFile: string;
  notAfter: string;
}

export interface CronFixtures {
  format: number;
  root: string;
  dir: string;
  pairs: CronPair[];
  keysGeneratedAt: string;
  certsGeneratedAt: string;
  keygenSeconds: number;
  certSeconds: number;
  /** What this call did: 'cached', 'generated', 're-signed'. */
  made: string;
  /** Seconds this call spent (checking or generating). */
  seconds: number;
}

export function defaultCronFixtureRoot(): string {
  return process.env.PASSTORE_BENCH_CRON_FIXTURES ?? '/var/tmp/passtore-bench-cron';
}

/** Pair i's not-after, counted from `base`: one in twenty 8–29 days out, the rest 45–824. */
export function cronNotAfter(i: number, base: number): Date {
  return fixtureNotAfter(i, base, CRON_DUE_EVERY, 7);
}

function readManifest(path: string): CronFixtures | undefined {
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as CronFixtures;
    if (s.format !== FORMAT || s.pairs.length !== CRON_PAIRS) return undefined;
    s.dir = path.replace(/\.json$/, '');
    return existsSync(s.dir) ? s : undefined;
  } catch {
    return undefined;
  }
}

function writeManifest(path: string, s: CronFixtures): void {
  const { made: _made, seconds: _seconds, root: _root, ...kept } = s;
  writeJsonAtomic(path, kept);
}

async function signAll(ca: SigningCa, s: CronFixtures, keys: KeyObject[] | undefined): Promise<void> {
  await signPairs(ca, s, keys, {
    label: 'signing certificates',
    notAfter: cronNotAfter,
    usages: ['serverAuth'],
    dnsNames: (host) => [host],
    write: (p, pem) => {
      writeFileSync(join(s.dir, `${p.certFile}.tmp`), pem);
      renameSync(join(s.dir, `${p.certFile}.tmp`), join(s.dir, p.certFile));
    },
  });
}

/** Loads the 10,000 pairs, generating them (or re-signing stale certificates) when needed. */
export async function ensureCronFixtures(root = defaultCronFixtureRoot()): Promise<CronFixtures> {
  const t0 = performance.now();
  mkdirSync(root, { recursive: true });
  const ca = await loadOrMakeCa(root, CA_NAME);
  const manifest = join(root, 'pairs-10000.json');
  const found = readManifest(manifest);
  if (found) {
    found.root = root;
    const stale = olderThan(found.certsGeneratedAt, MAX_CERT_AGE_DAYS);
    if (!stale) return { ...found, made: 'cached', seconds: (performance.now() - t0) / 1000 };
    console.log(`  certificates made ${found.certsGeneratedAt} are more than ${MAX_CERT_AGE_DAYS} days old: re-signing them (keys kept)`);
    // Re-signed in place: drop the manifest first, so an interrupted run regenerates.
    rmSync(manifest, { force: true });
    await signAll(ca, found, undefined);
    writeManifest(manifest, found);
    return { ...found, made: 're-signed', seconds: (performance.now() - t0) / 1000 };
  }
  const dir = join(root, 'pairs-10000');
  const tmp = partialDir(dir);
  const tk = performance.now();
  const keys = await pool(CRON_PAIRS, 8, newEcKey, progressPrinter('generating EC P-256 keys', CRON_PAIRS));
  const keygenSeconds = (performance.now() - tk) / 1000;
  const pairs: CronPair[] = keys.map((k, i) => {
    const host = `cr-${String(i).padStart(5, '0')}.example.org`;
    const bucket = (i % 16).toString(16);
    const p = { host, certFile: join(bucket, `${host}.crt`), keyFile: join(bucket, `${host}.key`), notAfter: '' };
    writeFileSync(join(tmp, p.keyFile), k.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    return p;
  });
  const s: CronFixtures = { format: FORMAT, root, dir: tmp, pairs, keysGeneratedAt: new Date().toISOString(), certsGeneratedAt: '', keygenSeconds, certSeconds: 0, made: 'generated', seconds: 0 };
  await signAll(ca, s, keys);
  commitDir(tmp, dir);
  s.dir = dir;
  writeManifest(manifest, s);
  return { ...s, seconds: (performance.now() - t0) / 1000 };
}

/** Fixture generation on its own: `node dist/test/bench/cron-fixtures.js`. */
if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await ensureCronFixtures();
  console.log(`cron fixtures in ${f.dir}: ${f.made} (${f.seconds.toFixed(1)} s)`);
}
