/**
 * The reader on real-world files: the python `cryptography` test vectors (Debian
 * python3-cryptography-vectors: PKCS#12 from several tools, PKCS#7 bundles, certificates
 * with odd DNs) and the system trust store. Every PKCS#12 opens (with its password, or
 * none) into the same objects as its password-less twin; every DN is shown as OpenSSL's
 * RFC 2253 rendering shows it; importcert of /etc/ssl/certs accounts for every file.
 * Skipped with the reason outside CI when the package is missing; a failure under CI=true.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readObjects, unlock, type FileContents } from '../../src/x509/pem.js';
import { pairByKey, scanDirectory, wipeScan } from '../../src/x509/import.js';
import { createTestVault, removeTestDir } from '../support/scripted.js';
import { openssl } from './fixture-ca.js';

const VECTORS = '/usr/lib/python3/dist-packages/cryptography_vectors';
let vectorsSkip: string | false = false;
if (!existsSync(VECTORS)) {
  vectorsSkip = `${VECTORS} is missing (apt-get install python3-cryptography-vectors)`;
  if (process.env.CI === 'true') throw new Error(`CI requires ${vectorsSkip}`);
  console.log(`# skipping the cryptography vectors: ${vectorsSkip}`);
}

const summary = (c: FileContents): string[] =>
  c.objects.map((o) => (o.kind === 'certificate' ? `cert ${o.facts.fingerprintSha256}` : o.kind === 'key' ? `key ${o.facts.spkiSha256}` : 'locked')).sort();

test('every PKCS#12 vector opens: password-less at once, the others with their password into the same objects; a wrong password is refused', { skip: vectorsSkip }, () => {
  const dir = join(VECTORS, 'pkcs12');
  const files = readdirSync(dir).filter((f) => f.endsWith('.p12'));
  assert.ok(files.length >= 30, 'the vectors are there');
  for (const f of files) {
    const r = readObjects(readFileSync(join(dir, f)));
    assert.deepEqual(r.problems, [], f);
    const password = /^(no-cert-)?(name|no-name)/.test(f) ? 'password' : 'cryptography';
    const locked = r.objects.find((o) => o.kind === 'locked');
    const opened = locked?.kind === 'locked' ? unlock(locked.locked, Buffer.from(password)) : r;
    assert.ok(opened.objects.length > 0 && opened.objects.every((o) => o.kind !== 'locked'), f);
    if (locked?.kind === 'locked') assert.throws(() => unlock(locked.locked, Buffer.from('not the password')), /^PasstoreError: wrong passphrase for the PKCS#12 file$|wrong passphrase for the PKCS#12 file/, f);
    const twin = f.replace(/-pwd\.p12$/, '-no-pwd.p12');
    if (twin !== f && files.includes(twin) && !f.includes('no-pwd')) assert.deepEqual(summary(opened), summary(readObjects(readFileSync(join(dir, twin)))), `${f} and ${twin}`);
  }
});

test('PKCS#7 vectors: the DER and PEM bundles give the same certificates; an enveloped message is refused with its reason', { skip: vectorsSkip }, () => {
  const dir = join(VECTORS, 'pkcs7');
  const der = readObjects(readFileSync(join(dir, 'amazon-roots.der')));
  const pem = readObjects(readFileSync(join(dir, 'amazon-roots.p7b')));
  assert.equal(der.objects.length, 2);
  assert.deepEqual(summary(der), summary(pem));
  const enveloped = readObjects(readFileSync(join(dir, 'enveloped.pem')));
  assert.deepEqual(enveloped.objects, []);
  assert.match(enveloped.problems[0] ?? '', /not a certificate bundle/);
});

test('every certificate vector: read or refused with a reason, and its DN shown as OpenSSL shows it in RFC 2253', { skip: vectorsSkip }, async () => {
  let compared = 0;
  for (const sub of ['x509', 'x509/custom']) {
    const dir = join(VECTORS, sub);
    for (const f of readdirSync(dir)) {
      const path = join(dir, f);
      if (!statSync(path).isFile()) continue;
      const r = readObjects(readFileSync(path));
      assert.ok(r.objects.length + r.problems.length > 0, `${f}: something said`);
      const first = r.objects[0];
      if (first?.kind !== 'certificate') continue;
      const args = ['x509', '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb', '-in', path];
      if (!readFileSync(path, 'latin1').includes('-----BEGIN')) args.push('-inform', 'DER');
      const shown = await openssl(args).catch(() => undefined);
      if (shown === undefined) continue;
      assert.equal(first.facts.subject, shown.trim().replace(/^subject=/, ''), f);
      compared++;
    }
  }
  assert.ok(compared > 80, `compared ${compared} DNs`);
});

test('importcert of the system trust store: every file accounted for (CA certificates passed over), nothing stored', async () => {
  const dir = '/etc/ssl/certs';
  const names = readdirSync(dir).filter((n) => !lstatSync(join(dir, n)).isDirectory() && !(lstatSync(join(dir, n)).isSymbolicLink() && statSync(join(dir, n)).isDirectory()));
  const scan = await scanDirectory(dir);
  const { pairs, skipped, lonelyCerts, unmatched } = pairByKey(scan);
  wipeScan(scan);
  const accounted = new Set([...skipped, ...unmatched, ...scan.unreadable].map((p) => p.file).concat(lonelyCerts.map((c) => c.file), pairs.map((p) => p.cert.file)));
  assert.deepEqual(names.filter((n) => !accounted.has(n)), [], 'every file accounted for');
  assert.equal(pairs.length, 0);

  const tv = await createTestVault();
  after(async () => {
    await tv.close();
    removeTestDir(tv);
  });
  const from = tv.io.lines.length;
  const status = await tv.run(`importcert ${dir}`);
  const text = tv.io.lines.slice(from).join('\n');
  assert.match(text, new RegExp(`^${dir}: ${scan.files} files read; 0 pairs added`, 'm'));
  assert.match(text, /^passed over \d+ CA certificates \(chain files\): /m);
  assert.equal(status, unmatched.length + scan.unreadable.length + lonelyCerts.length > 0 ? 1 : 0, text);
  assert.deepEqual((await tv.session.store.currentCertificates('*')).length, 0);
});
