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
 * 10,000, and this benchmark needs 500. Its generator is not exported, so this module
 * follows the same recipe (Node's generateKeyPair on the libuv pool, @peculiar/x509 on
 * WebCrypto for the certificates) with its own schedule of dates.
 *
 * Certificates are re-signed (keys kept) when they are more than 7 days old, so the 500
 * stay due within 30 days and none is expired (the earliest is 8 days out when made).
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const generate = promisify(generateKeyPair);
const DAY = 86_400_000;
const FORMAT = 1;
const MAX_CERT_AGE_DAYS = 7;
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

interface Ca {
  key: CryptoKey;
  name: string;
}

export function defaultCronFixtureRoot(): string {
  return process.env.PASSTORE_BENCH_CRON_FIXTURES ?? '/var/tmp/passtore-bench-cron';
}

async function pool<T>(count: number, width: number, fn: (i: number) => Promise<T>, progress?: (done: number) => void): Promise<T[]> {
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

function progressPrinter(label: string, total: number): (done: number) => void {
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

async function loadOrMakeCa(root: string): Promise<Ca> {
  const dir = join(root, 'ca');
  const keyFile = join(dir, 'ca-key.pk8');
  const certFile = join(dir, 'ca.pem');
  const name = 'CN=passtore cron bench CA, O=passtore bench';
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  if (existsSync(keyFile) && existsSync(certFile)) {
    return { key: (await webcrypto.subtle.importKey('pkcs8', readFileSync(keyFile), alg, false, ['sign'])) as CryptoKey, name };
  }
  mkdirSync(dir, { recursive: true });
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name,
    keys,
    notBefore: new Date(Date.now() - 400 * DAY),
    notAfter: new Date(Date.now() + 20 * 365 * DAY),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  writeFileSync(`${keyFile}.tmp`, Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), { mode: 0o600 });
  writeFileSync(certFile, cert.toString('pem'));
  renameSync(`${keyFile}.tmp`, keyFile);
  return { key: keys.privateKey, name };
}

/** Pair i's not-after, counted from `base`: one in twenty 8–29 days out, the rest 45–824. */
export function cronNotAfter(i: number, base: number): Date {
  const days = i % CRON_DUE_EVERY === 7 ? 8 + ((i * 7919) % 22) : 45 + ((i * 104_729) % 780);
  return new Date(base + days * DAY + ((i * 3_600_000) % DAY));
}

async function signCert(ca: Ca, key: KeyObject, host: string, i: number, base: number): Promise<{ pem: string; notAfter: Date }> {
  const notAfter = cronNotAfter(i, base);
  const notBefore = new Date(Math.min(base - DAY, notAfter.getTime() - 90 * DAY) - ((i * 7_777_777) % (200 * DAY)));
  const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    subject: `CN=${host}, O=passtore bench, DC=example, DC=org`,
    issuer: ca.name,
    notBefore,
    notAfter,
    publicKey: spki,
    signingKey: ca.key,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }]),
    ],
  });
  return { pem: cert.toString('pem'), notAfter };
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
  writeFileSync(`${path}.tmp`, JSON.stringify(kept));
  renameSync(`${path}.tmp`, path);
}

async function signAll(ca: Ca, s: CronFixtures, keys: KeyObject[] | undefined): Promise<void> {
  const base = Date.now();
  const t0 = performance.now();
  await pool(
    s.pairs.length,
    16,
    async (i) => {
      const p = s.pairs[i]!;
      const key = keys?.[i] ?? createPrivateKey(readFileSync(join(s.dir, p.keyFile)));
      const { pem, notAfter } = await signCert(ca, key, p.host, i, base);
      writeFileSync(join(s.dir, `${p.certFile}.tmp`), pem);
      renameSync(join(s.dir, `${p.certFile}.tmp`), join(s.dir, p.certFile));
      p.notAfter = notAfter.toISOString();
    },
    progressPrinter('signing certificates', s.pairs.length),
  );
  s.certsGeneratedAt = new Date(base).toISOString();
  s.certSeconds = (performance.now() - t0) / 1000;
}

/** Loads the 10,000 pairs, generating them (or re-signing stale certificates) when needed. */
export async function ensureCronFixtures(root = defaultCronFixtureRoot()): Promise<CronFixtures> {
  const t0 = performance.now();
  mkdirSync(root, { recursive: true });
  const ca = await loadOrMakeCa(root);
  const manifest = join(root, 'pairs-10000.json');
  const found = readManifest(manifest);
  if (found) {
    found.root = root;
    const stale = Date.now() - Date.parse(found.certsGeneratedAt) > MAX_CERT_AGE_DAYS * DAY;
    if (!stale) return { ...found, made: 'cached', seconds: (performance.now() - t0) / 1000 };
    console.log(`  certificates made ${found.certsGeneratedAt} are more than ${MAX_CERT_AGE_DAYS} days old: re-signing them (keys kept)`);
    // Re-signed in place: drop the manifest first, so an interrupted run regenerates.
    rmSync(manifest, { force: true });
    await signAll(ca, found, undefined);
    writeManifest(manifest, found);
    return { ...found, made: 're-signed', seconds: (performance.now() - t0) / 1000 };
  }
  const dir = join(root, 'pairs-10000');
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  for (let b = 0; b < 16; b++) mkdirSync(join(tmp, b.toString(16)), { recursive: true });
  const tk = performance.now();
  const keys = await pool(CRON_PAIRS, 8, async () => (await generate('ec', { namedCurve: 'prime256v1' })).privateKey, progressPrinter('generating EC P-256 keys', CRON_PAIRS));
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
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  s.dir = dir;
  writeManifest(manifest, s);
  return { ...s, seconds: (performance.now() - t0) / 1000 };
}

/** Fixture generation on its own: `node dist/test/bench/cron-fixtures.js`. */
if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await ensureCronFixtures();
  console.log(`cron fixtures in ${f.dir}: ${f.made} (${f.seconds.toFixed(1)} s)`);
}
