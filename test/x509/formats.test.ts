/**
 * The one reading path (src/x509/pem.ts readObjects, with unlock for what a passphrase
 * locks) on what CAs and old sites deliver: PKCS#12 (OpenSSL 3 default, -legacy,
 * password-less), PKCS#7 in PEM and DER, encrypted PKCS#8 in DER, PBES1 MD5-DES keys,
 * an RSA key with a wrong private exponent, an EC key with a wrong scalar, grid subjects, an empty subject with a
 * critical subjectAltName, self-signed and version 1 CA certificates. Fixtures made by
 * openssl and Node's crypto (fixture-formats.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { FixtureCa, opensslBytes, opensslOk } from './fixture-ca.js';
import { brokenEc, brokenRsa, certWith, pbes1Key, pkcs12, pkcs7, selfSigned, v1Ca } from './fixture-formats.js';
import { readObjects, unlock, type FileContents, type Found } from '../../src/x509/pem.js';
import { hostsOfCertificate, namesHost, parseCertificate } from '../../src/x509/certificate.js';
import { PasstoreError } from '../../src/errors.js';
import { spkiSha256 } from '../../src/x509/keys.js';

const ca = await FixtureCa.create();
after(() => ca.remove());
const PASS = 'p12 fixture passphrase';

const rsaKey = await ca.genKey('rsa-2048');
const ecKey = await ca.genKey('ec-p256');
const rsaCert = await ca.issue(rsaKey, 'p12-rsa.example.org');
const ecCert = await ca.issue(ecKey, 'p12-ec.example.org');

const summary = (c: FileContents) =>
  c.objects.map((o: Found) => (o.kind === 'certificate' ? `cert ${o.facts.fingerprintSha256}` : o.kind === 'key' ? `key ${o.facts.spkiSha256}` : `locked ${o.locked.format}`)).sort();
const lockedOf = (o: Found | undefined) => {
  assert.equal(o?.kind, 'locked');
  return (o as Extract<Found, { kind: 'locked' }>).locked;
};
const fp = async (cert: string) => `cert ${await ca.fingerprint(cert)}`;
const kp = (key: string) => `key ${spkiSha256(createPrivateKey(readFileSync(key)))}`;

test('PKCS#12: OpenSSL 3 default (PBES2 AES-256, SHA-256 MAC) and -legacy (RC2/3DES, SHA-1): locked, opened with the passphrase into the key, certificate and chain', async () => {
  for (const legacy of [false, true]) {
    for (const [key, cert] of [[rsaKey, rsaCert], [ecKey, ecCert]] as const) {
      const der = await pkcs12(ca, key, cert, { pass: PASS, legacy, chain: [ca.caCert] });
      const r = readObjects(der);
      assert.deepEqual(r.problems, []);
      assert.equal(r.objects.length, 1);
      const locked = r.objects[0]!;
      assert.equal(locked.kind, 'locked');
      if (locked.kind !== 'locked') continue;
      assert.equal(locked.locked.format, 'pkcs12');
      const opened = unlock(locked.locked, Buffer.from(PASS));
      assert.deepEqual(opened.problems, []);
      assert.deepEqual(summary(opened), [await fp(cert), await fp(ca.caCert), kp(key)].sort(), `legacy=${legacy}`);
      assert.throws(() => unlock(locked.locked, Buffer.from('not the passphrase')), (e: unknown) => e instanceof PasstoreError && e.code === 'bad-passphrase' && /wrong passphrase for the PKCS#12 file/.test(e.message));
    }
  }
});

test('PKCS#12 without a password opens at once', async () => {
  const der = await pkcs12(ca, ecKey, ecCert, {});
  const r = readObjects(der);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(summary(r), [await fp(ecCert), kp(ecKey)].sort());
});

test('PKCS#7: a .p7b (PEM) and a .p7c (DER) give every certificate', async () => {
  for (const form of ['PEM', 'DER'] as const) {
    const data = await pkcs7(ca, [rsaCert, ecCert, ca.caCert], form);
    const r = readObjects(data);
    assert.deepEqual(r.problems, [], form);
    assert.deepEqual(summary(r), [await fp(rsaCert), await fp(ecCert), await fp(ca.caCert)].sort(), form);
  }
});

test('an encrypted PKCS#8 key in DER is locked (asks for its passphrase), not "neither PEM nor DER"', async () => {
  const der = await opensslBytes(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', ecKey, '-outform', 'DER', '-passout', 'env:FIXTURE_PASS'], { ...process.env, FIXTURE_PASS: 'derpass' });
  const r = readObjects(der);
  assert.deepEqual(r.problems, []);
  assert.equal(r.objects[0]?.kind, 'locked');
  if (r.objects[0]?.kind !== 'locked') return;
  assert.equal(r.objects[0].locked.format, 'pkcs8');
  assert.deepEqual(summary(unlock(r.objects[0].locked, Buffer.from('derpass'))), [kp(ecKey)]);
  assert.throws(() => unlock(lockedOf(r.objects[0]), Buffer.from('wrong')), /wrong passphrase/);
});

test('PBES1 MD5-DES and SHA1-RC2 PKCS#8 keys decrypt with the right passphrase; a wrong one is called wrong', async () => {
  for (const scheme of ['PBE-MD5-DES', 'PBE-SHA1-RC2-64']) {
    const pem = await pbes1Key(rsaKey, 'old passphrase', scheme);
    const r = readObjects(Buffer.from(pem));
    assert.equal(r.objects[0]?.kind, 'locked', scheme);
    if (r.objects[0]?.kind !== 'locked') continue;
    assert.deepEqual(summary(unlock(r.objects[0].locked, Buffer.from('old passphrase'))), [kp(rsaKey)], scheme);
    assert.throws(() => unlock(lockedOf(r.objects[0]), Buffer.from('not it')), /wrong passphrase/, scheme);
  }
});

test('an RSA key whose private exponent is wrong is refused when read, with the reason', async () => {
  const bad = brokenRsa(readFileSync(rsaKey, 'utf8'));
  const badFile = ca.path('bad-d.key');
  writeFileSync(badFile, bad);
  assert.match((await opensslOk(['rsa', '-check', '-noout', '-in', badFile])).output, /d e not congruent to 1/, 'openssl finds the same fault');
  const r = readObjects(Buffer.from(bad));
  assert.deepEqual(r.objects, []);
  assert.deepEqual(r.problems, ['damaged RSA private key: d·e is not congruent to 1 (its private exponent is wrong)']);
  // the same key, intact, reads
  assert.deepEqual(summary(readObjects(readFileSync(rsaKey))), [kp(rsaKey)]);
});

test('an EC key whose private scalar is wrong but whose embedded public point is right is refused, as SEC1 and PKCS#8', async () => {
  const good = readFileSync(ecKey, 'utf8');
  const want = 'damaged EC private key: its private scalar does not give its public point (d·G ≠ Q)';
  for (const type of ['sec1', 'pkcs8'] as const) {
    const bad = brokenEc(good, type);
    const badFile = ca.path(`bad-ec-${type}.key`);
    writeFileSync(badFile, bad);
    // its public point is the good key's: the pairing alone would take it
    assert.equal(createPublicKey(bad).export({ type: 'spki', format: 'der' }).toString('hex'), createPublicKey(good).export({ type: 'spki', format: 'der' }).toString('hex'), type);
    const check = await opensslOk(['ec', '-check', '-noout', '-in', badFile]);
    assert.match(check.output, /EC Key Invalid[\s\S]*invalid private key/, `openssl finds the same fault (${type})`);
    for (const data of [Buffer.from(bad), createPrivateKey(bad).export({ type, format: 'der' })]) {
      const r = readObjects(data);
      assert.deepEqual(r.objects, [], type);
      assert.deepEqual(r.problems, [want], type);
    }
  }
  assert.deepEqual(summary(readObjects(readFileSync(ecKey))), [kp(ecKey)]);
});

test('grid subjects: Globus CN=host/FQDN without SAN, a CN that is not last; the host is the CN\'s, not the first SAN', async () => {
  const k = await ca.genKey('ec-p256');
  const globus = parseCertificate(readFileSync(await certWith(ca, k, '/DC=org/DC=example/O=INFN/CN=host\\/ui-33.example.org', [])));
  assert.deepEqual(hostsOfCertificate(globus.cert, globus.facts), ['ui-33.example.org']);
  assert.ok(namesHost(globus.cert, 'ui-33.example.org'));
  assert.equal(globus.facts.subject, 'CN=host/ui-33.example.org,O=INFN,DC=example,DC=org');
  const notLast = parseCertificate(readFileSync(await certWith(ca, k, '/DC=org/O=Grid/CN=ce-03.example.org/emailAddress=grid@example.org', [])));
  assert.deepEqual(hostsOfCertificate(notLast.cert, notLast.facts), ['ce-03.example.org']);
  assert.ok(namesHost(notLast.cert, 'ce-03.example.org'));
  const twoNames = parseCertificate(readFileSync(await certWith(ca, k, '/DC=org/O=INFN/CN=host\\/ui-33.example.org', ['alias-33.example.org', 'ui-33.example.org'])));
  assert.deepEqual(hostsOfCertificate(twoNames.cert, twoNames.facts), ['ui-33.example.org', 'alias-33.example.org']);
  const sanOnly = parseCertificate(readFileSync(await certWith(ca, k, '/O=Site/CN=Web service', ['b.example.org', 'a.example.org'])));
  assert.deepEqual(hostsOfCertificate(sanOnly.cert, sanOnly.facts), ['b.example.org', 'a.example.org']);
  // a Globus CN does not name a host its SANs leave out
  const other = parseCertificate(readFileSync(await certWith(ca, k, '/CN=host\\/x.example.org', ['y.example.org'])));
  assert.ok(!namesHost(other.cert, 'x.example.org'));
});

test('an empty subject with a critical subjectAltName is read; a version 1 CA certificate is read', async () => {
  const k = await ca.genKey('ec-p256');
  const empty = readObjects(readFileSync(await certWith(ca, k, '', ['empty-subject.example.org'], { criticalSan: true })));
  assert.deepEqual(empty.problems, []);
  assert.equal(empty.objects[0]?.kind, 'certificate');
  if (empty.objects[0]?.kind === 'certificate') {
    assert.equal(empty.objects[0].facts.subject, '');
    assert.deepEqual(hostsOfCertificate(empty.objects[0].cert, empty.objects[0].facts), ['empty-subject.example.org']);
  }
  const v1 = await v1Ca(ca);
  const r = readObjects(readFileSync(v1.cert));
  assert.deepEqual(r.problems, []);
  assert.equal(r.objects[0]?.kind === 'certificate' && r.objects[0].cert.ca, false, 'a v1 certificate has no basicConstraints');
});

test('DNs are shown in RFC 4514 with escaping: a comma, a slash, a plus, a leading #', async () => {
  const k = await ca.genKey('ec-p256');
  const c = parseCertificate(readFileSync(await certWith(ca, k, '/C=IT/O=Site, Inc\\/Grid/OU=a\\+b/CN=#web.example.org', ['web.example.org'])));
  assert.equal(c.facts.subject, 'CN=\\#web.example.org,OU=a\\+b,O=Site\\, Inc/Grid,C=IT');
});

test('a self-signed certificate made by openssl req -x509 is marked as a CA and names its host', async () => {
  const k = await ca.genKey('ec-p256');
  const s = parseCertificate(readFileSync(await selfSigned(ca, k, 'self.example.org')));
  assert.equal(s.cert.ca, true);
  assert.deepEqual(hostsOfCertificate(s.cert, s.facts), ['self.example.org']);
});

test('the IMAP fetcher reads a CA\'s mail through the same reader: a .p7c (DER PKCS#7) attachment gives every certificate', async () => {
  const { certificatesInMail } = await import('../../src/fetchers/imap.js');
  const p7c = await pkcs7(ca, [rsaCert, ca.caCert], 'DER');
  const mail = [
    'From: ca@example.org',
    'To: admin@example.org',
    'Subject: your certificate',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'Your certificate is attached.',
    '--b1',
    'Content-Type: application/pkcs7-mime; name="cert.p7c"',
    'Content-Disposition: attachment; filename="cert.p7c"',
    'Content-Transfer-Encoding: base64',
    '',
    ...(p7c.toString('base64').match(/.{1,76}/g) ?? []),
    '--b1--',
    '',
  ].join('\r\n');
  const { pems } = await certificatesInMail(Buffer.from(mail));
  const fps = pems.map((p) => parseCertificate(p).facts.fingerprintSha256).sort();
  assert.deepEqual(fps, [await ca.fingerprint(rsaCert), await ca.fingerprint(ca.caCert)].sort());
});
