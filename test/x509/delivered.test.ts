/**
 * importcert, getcrt, getkey and crtreq on what CAs and old sites deliver (issue 12), on a
 * real Session and store, with fixtures made by openssl and Node's crypto:
 *
 * - PKCS#12 files (OpenSSL 3 default and -legacy) asked once each, the passphrase kept
 *   for the rest of the run when the operator says so, asked again where it does not
 *   fit; a PKCS#7 bundle; encrypted PKCS#8 in DER; a PBES1 MD5-DES key;
 * - the host from the CN (Globus host/FQDN, a CN not last), not the first SAN; a name
 *   already in the vault preferred; an empty subject with a critical SAN;
 * - a self-signed CA:TRUE certificate beside its key is its host's, said in the report;
 * - a key whose certificate was refused, and a key whose private exponent is wrong, are
 *   in the report with their reasons;
 * - getcrt: grid subjects, a version 1 CA in the chain, PKCS#7, PKCS#12, a FIFO and a
 *   device refused at once; getkey HOST FILE.p12; crtreq keeps a Globus subject.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestVault, removeTestDir, type TestVault } from '../support/scripted.js';
import { FixtureCa, opensslBytes } from './fixture-ca.js';
import { brokenRsa, certWith, pbes1Key, pkcs12, pkcs7, selfSigned, v1Ca } from './fixture-formats.js';

const D = 'example.org';
const fq = (s: string) => `${s}.${D}`;
const P = 'first p12 passphrase';
const Q = 'another passphrase';
const ca = await FixtureCa.create();
const root = mkdtempSync(join(tmpdir(), 'passtore-delivered-'));
let tv: TestVault;
before(async () => {
  tv = await createTestVault({ domain: D });
});
after(async () => {
  await tv?.close();
  if (tv) removeTestDir(tv);
  ca.remove();
  rmSync(root, { recursive: true, force: true });
});

const spki = (keyFile: string) => createHash('sha256').update(createPublicKey(createPrivateKey(readFileSync(keyFile))).export({ type: 'spki', format: 'der' })).digest('hex');

async function run(line: string, ...answers: string[]) {
  const from = tv.io.lines.length;
  const prompts = tv.io.prompts.length;
  const status = await tv.run(line, ...answers);
  const lines = tv.io.lines.slice(from);
  return { status, lines, text: lines.join('\n'), prompts: tv.io.prompts.slice(prompts) };
}

function problemRows(lines: string[]): Map<string, string> {
  const at = lines.indexOf('FILE | NOT IMPORTED BECAUSE');
  const rows = new Map<string, string>();
  if (at < 0) return rows;
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith('error: ')) break;
    const i = line.indexOf(' | ');
    rows.set(line.slice(0, i), line.slice(i + 3));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// The import directory, files named so that the walk meets them in this order.
// ---------------------------------------------------------------------------------------
const DIR = join(root, 'site');
mkdirSync(DIR);
const keys: Record<string, string> = {};
async function pairFiles(name: string, type: 'ec-p256' | 'rsa-2048', subject: string, sans: string[]) {
  keys[name] = await ca.genKey(type);
  return { key: keys[name]!, cert: await certWith(ca, keys[name]!, subject, sans) };
}
// PKCS#12: a (passphrase P, asked; kept), b (-legacy, P: opened with the kept one), c (Q: asked again).
const a = await pairFiles('a', 'ec-p256', `/CN=${fq('p12-a')}`, [fq('p12-a')]);
writeFileSync(join(DIR, 'a-modern.p12'), await pkcs12(ca, a.key, a.cert, { pass: P, chain: [ca.caCert] }));
const b = await pairFiles('b', 'rsa-2048', `/CN=${fq('p12-b')}`, [fq('p12-b')]);
writeFileSync(join(DIR, 'b-legacy.p12'), await pkcs12(ca, b.key, b.cert, { pass: P, legacy: true }));
const c = await pairFiles('c', 'ec-p256', `/CN=${fq('p12-c')}`, [fq('p12-c')]);
writeFileSync(join(DIR, 'c-other.pfx'), await pkcs12(ca, c.key, c.cert, { pass: Q }));
// An encrypted PKCS#8 key in DER (P: the kept passphrase opens it), its certificate in a PKCS#7 bundle.
const d = await pairFiles('d', 'ec-p256', `/CN=${fq('p7-d')}`, [fq('p7-d')]);
writeFileSync(join(DIR, 'd-key.der'), await opensslBytes(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', d.key, '-outform', 'DER', '-passout', 'env:FIXTURE_PASS'], { ...process.env, FIXTURE_PASS: P }));
writeFileSync(join(DIR, 'd-cert.p7b'), await pkcs7(ca, [d.cert, ca.caCert], 'PEM'));
// A PBES1 MD5-DES key (P).
const e = await pairFiles('e', 'rsa-2048', `/CN=${fq('pbes1-e')}`, [fq('pbes1-e')]);
writeFileSync(join(DIR, 'e-pbes1.key'), await pbes1Key(e.key, P));
writeFileSync(join(DIR, 'e.crt'), readFileSync(e.cert));
// Grid subjects without SAN: Globus host/FQDN, a CN that is not the last attribute.
const g = await pairFiles('g', 'ec-p256', `/DC=org/DC=example/O=INFN/CN=host\\/${fq('glob-g')}`, []);
writeFileSync(join(DIR, 'g.pem'), readFileSync(g.cert, 'utf8') + readFileSync(g.key, 'utf8'));
const h = await pairFiles('h', 'ec-p256', `/DC=org/O=Grid/CN=${fq('ce-03')}/emailAddress=grid@example.org`, []);
writeFileSync(join(DIR, 'h.pem'), readFileSync(h.cert, 'utf8') + readFileSync(h.key, 'utf8'));
// The CN's host, not the first SAN's.
const i = await pairFiles('i', 'ec-p256', `/DC=org/O=INFN/CN=host\\/${fq('ui-33')}`, [fq('alias-33'), fq('ui-33')]);
writeFileSync(join(DIR, 'i.pem'), readFileSync(i.cert, 'utf8') + readFileSync(i.key, 'utf8'));
// A certificate naming two hosts (no host CN): the one already in the vault.
const j = await pairFiles('j', 'ec-p256', '/O=Site/CN=Web service', [fq('alias-34'), fq('ui-34')]);
writeFileSync(join(DIR, 'j.pem'), readFileSync(j.cert, 'utf8') + readFileSync(j.key, 'utf8'));
// An empty subject with a critical SAN.
const k = await pairFiles('k', 'ec-p256', '', [fq('empty-k')]);
writeFileSync(join(DIR, 'k.pem'), readFileSync(k.cert, 'utf8') + readFileSync(k.key, 'utf8'));
// A self-signed certificate (CA:TRUE, as openssl req -x509 makes it) beside its key.
keys.s = await ca.genKey('ec-p256');
writeFileSync(join(DIR, 's.crt'), readFileSync(await selfSigned(ca, keys.s, fq('self-s'))));
writeFileSync(join(DIR, 's.key'), readFileSync(keys.s));
// A certificate naming no host, its key in another file; an expired one likewise.
const n = await pairFiles('n', 'ec-p256', '/O=Site/CN=Web service', []);
writeFileSync(join(DIR, 'n.crt'), readFileSync(n.cert));
writeFileSync(join(DIR, 'n.key'), readFileSync(n.key));
keys.x = await ca.genKey('ec-p256');
writeFileSync(join(DIR, 'x.crt'), readFileSync(await ca.issue(keys.x, fq('expired-x'), { notBefore: '20200101000000Z', notAfter: '20210101000000Z' })));
writeFileSync(join(DIR, 'x.key'), readFileSync(keys.x));
// An RSA key whose private exponent is wrong, beside its certificate.
const w = await pairFiles('w', 'rsa-2048', `/CN=${fq('broken-w')}`, [fq('broken-w')]);
writeFileSync(join(DIR, 'w.crt'), readFileSync(w.cert));
writeFileSync(join(DIR, 'w.key'), brokenRsa(readFileSync(w.key, 'utf8')));

test('importcert: PKCS#12 (asked once, kept, asked again where it does not fit), PKCS#7, encrypted DER and PBES1 keys; hosts from the CN; every file reported', async () => {
  assert.equal((await run(`host add ${fq('ui-34')}`)).status, 0);
  const r = await run(`importcert ${DIR}`, P, 'yes', Q);
  assert.deepEqual(r.prompts, [
    'Passphrase for the PKCS#12 file in a-modern.p12 (empty to skip)',
    'Use this passphrase for the 4 other files that need one (asked again where it does not fit)?',
    'Passphrase for the PKCS#12 file in c-other.pfx (empty to skip)',
  ]);
  assert.equal(r.status, 1, r.text);
  const current = await tv.session.store.currentCertificates('*');
  const byHost = new Map(current.map((x) => [x.fqdn, x]));
  const expected: Record<string, string> = { 'p12-a': 'a', 'p12-b': 'b', 'p12-c': 'c', 'p7-d': 'd', 'pbes1-e': 'e', 'glob-g': 'g', 'ce-03': 'h', 'ui-33': 'i', 'ui-34': 'j', 'empty-k': 'k', 'self-s': 's' };
  assert.deepEqual([...byHost.keys()].sort(), Object.keys(expected).map(fq).sort(), r.text);
  for (const [host, key] of Object.entries(expected)) assert.equal(byHost.get(fq(host))!.keySpkiSha256, spki(keys[key]!), host);
  for (const never of ['alias-33', 'alias-34']) assert.equal(await tv.session.store.getHost(fq(never)), undefined, never);
  assert.equal(byHost.get(fq('glob-g'))!.subject, `CN=host/${fq('glob-g')},O=INFN,DC=example,DC=org`);
  assert.ok(r.lines.includes(`s.crt: a self-signed certificate marked as a CA, taken as the certificate of ${fq('self-s')}: it names that host and matches the key in s.key`), r.text);
  const problems = problemRows(r.lines);
  assert.deepEqual([...problems.keys()].sort(), ['n.crt', 'n.key', 'w.crt', 'w.key', 'x.crt', 'x.key'], r.text);
  assert.match(problems.get('n.crt')!, /^certificate CN=Web service,O=Site names no host$/);
  assert.match(problems.get('n.key')!, /^private key \(ec-p256\) of n\.crt, not imported: certificate .* names no host$/);
  assert.match(problems.get('x.key')!, /^private key \(ec-p256\) of x\.crt, not imported: certificate for expired-x\.example\.org expired on 2021-01-01/);
  assert.equal(problems.get('w.key'), 'damaged RSA private key: d·e is not congruent to 1 (its private exponent is wrong)');
  assert.equal(problems.get('w.crt'), 'certificate without its private key');
});

test('importcert: a wrong PKCS#12 passphrase is refused clearly, nothing of it stored', async () => {
  const dir = join(root, 'wrong');
  mkdirSync(dir);
  const f = await pairFiles('f', 'ec-p256', `/CN=${fq('p12-f')}`, [fq('p12-f')]);
  writeFileSync(join(dir, 'f.p12'), await pkcs12(ca, f.key, f.cert, { pass: P }));
  const r = await run(`importcert ${dir}`, 'not it');
  assert.equal(r.status, 1, r.text);
  assert.equal(problemRows(r.lines).get('f.p12'), 'wrong passphrase for the PKCS#12 file');
  assert.equal(await tv.session.store.getHost(fq('p12-f')), undefined);
});

test('getkey HOST FILE.p12 stores the key; getcrt of a PKCS#12 file stores its certificate', async () => {
  const m = await pairFiles('m', 'ec-p256', `/CN=${fq('gk-m')}`, [fq('gk-m')]);
  const file = join(root, 'm.p12');
  writeFileSync(file, await pkcs12(ca, m.key, m.cert, { pass: Q, legacy: true }));
  assert.equal((await run(`host add ${fq('gk-m')}`)).status, 0);
  const gk = await run(`getkey gk-m ${file}`, Q);
  assert.equal(gk.status, 0, gk.text);
  assert.deepEqual(gk.prompts, [`Passphrase for the PKCS#12 file in ${file} (empty to skip)`]);
  assert.equal((await tv.session.store.getKeyBySpki(spki(m.key)))?.fqdn, fq('gk-m'));
  const gc = await run(`getcrt ${file}`, Q);
  assert.equal(gc.status, 0, gc.text);
  assert.match(gc.lines[0]!, /^stored the certificate for gk-m\.example\.org /);
});

test('getcrt: Globus and CN-not-last subjects without SAN, a v1 CA in the chain, a PKCS#7 (DER) bundle, a self-signed CA:TRUE certificate', async () => {
  const v1 = await v1Ca(ca);
  const cases: Array<[string, string, (cert: string) => Promise<Buffer>]> = [
    ['gc-globus', `/DC=org/O=INFN/CN=host\\/${fq('gc-globus')}`, async (cert) => readFileSync(cert)],
    ['gc-notlast', `/DC=org/CN=${fq('gc-notlast')}/emailAddress=x@example.org`, async (cert) => Buffer.concat([readFileSync(cert), readFileSync(v1.cert)])],
    ['gc-p7c', `/CN=${fq('gc-p7c')}`, async (cert) => pkcs7(ca, [ca.caCert, cert, v1.cert], 'DER')],
  ];
  for (const [host, subject, deliver] of cases) {
    const key = await ca.genKey('ec-p256');
    const cert = await certWith(ca, key, subject, host === 'gc-p7c' ? [fq(host)] : []);
    assert.equal((await run(`host add ${fq(host)}`)).status, 0);
    assert.equal((await run(`getkey ${host} ${key}`)).status, 0);
    const file = join(root, `${host}.delivered`);
    writeFileSync(file, await deliver(cert));
    const r = await run(`getcrt ${file}`);
    assert.equal(r.status, 0, `${host}: ${r.text}`);
    assert.match(r.lines[0]!, new RegExp(`^stored the certificate for ${host}\\.example\\.org `), r.text);
  }
  const key = await ca.genKey('ec-p256');
  assert.equal((await run(`host add ${fq('gc-self')}`)).status, 0);
  assert.equal((await run(`getkey gc-self ${key}`)).status, 0);
  const r = await run(`getcrt ${await selfSigned(ca, key, fq('gc-self'))}`);
  assert.equal(r.status, 0, r.text);
  assert.deepEqual(r.lines, [
    r.lines[0]!,
    `note: it is self-signed and marked as a CA; taken as ${fq('gc-self')}'s certificate because it names that host and matches its key`,
  ]);
  const chainOnly = await run(`getcrt ${v1.cert}`);
  assert.equal(chainOnly.status, 1);
  assert.match(chainOnly.text, /no host certificate in it: only its chain: CN=Old Grid CA v1,O=Old Grid \(self-signed, and matches no key in the vault\)/);
});

test('getcrt refuses a FIFO and a device at once, with the reason', async () => {
  const fifo = join(root, 'fifo');
  execFileSync('mkfifo', [fifo]);
  for (const [file, why] of [[fifo, /is not a regular file/], ['/dev/zero', /is not a regular file/], [root, /is a directory/]] as const) {
    const t0 = Date.now();
    const r = await run(`getcrt ${file}`);
    assert.equal(r.status, 1, r.text);
    assert.match(r.text, why);
    assert.ok(Date.now() - t0 < 2000, 'answered at once');
  }
});

test('Ctrl-C (the command\'s signal aborted) during getkey and getcrt: one line, nothing stored; then the same commands store', async () => {
  assert.equal((await run(`host add ${fq('cx-01')}`)).status, 0);
  const key = await ca.genKey('ec-p256');
  const cert = await ca.issue(key, fq('cx-01'));
  const cancelled = async (line: string) => {
    const from = tv.io.lines.length;
    const controller = new AbortController();
    controller.abort();
    const status = await tv.session.execute(line, { signal: controller.signal });
    return { status, text: tv.io.lines.slice(from).join('\n') };
  };
  const k = await cancelled(`getkey cx-01 ${key}`);
  assert.equal(k.status, 1);
  assert.equal(k.text, 'getkey: cancelled; nothing stored');
  assert.equal(await tv.session.store.getKeyBySpki(createHash('sha256').update(createPublicKey(readFileSync(key)).export({ type: 'spki', format: 'der' })).digest('hex')), undefined);
  assert.equal((await run(`getkey cx-01 ${key}`)).status, 0);
  const c = await cancelled(`getcrt ${cert}`);
  assert.equal(c.status, 1);
  assert.equal(c.text, 'getcrt: cancelled; nothing stored');
  assert.ok(!(await run('lcrt')).text.includes(fq('cx-01')), 'no certificate stored');
  assert.equal((await run(`getcrt ${cert}`)).status, 0);
  assert.ok((await run('lcrt')).text.includes(fq('cx-01')));
});

test('crtreq keeps the current certificate\'s Globus subject; --template-subject takes dn_template\'s', async () => {
  const host = fq('glob-g');
  const r = await run(`crtreq glob-g --type ec-p256`);
  assert.equal(r.status, 0, r.text);
  const hostRow = (await tv.session.store.getHost(host))!;
  const [req] = await tv.session.store.listRequests(hostRow.id);
  assert.equal(req!.subject, `CN=host/${host},O=INFN,DC=example,DC=org`);
  tv.config.dnTemplate = '/DC=org/DC=example/CN=host\\/{fqdn}';
  const t = await run(`crtreq glob-g --type ec-p256 --template-subject --replace`);
  assert.equal(t.status, 0, t.text);
  const [req2] = await tv.session.store.listRequests(hostRow.id);
  assert.equal(req2!.subject, `CN=host/${host},DC=example,DC=org`, 'no stray backslash');
});

test('a key given to the wrong host: key move gives it to its host (confirmed, audited), then its certificate is stored; key rm removes a loose key; keys with a certificate stay', async () => {
  for (const hname of ['gk-10', 'gk-11']) assert.equal((await run(`host add ${fq(hname)}`)).status, 0);
  const key = await ca.genKey('ec-p256');
  assert.equal((await run(`getkey gk-11 ${key}`)).status, 0);
  const cert = await ca.issue(key, fq('gk-10'));
  const refused = await run(`getcrt ${cert}`);
  assert.equal(refused.status, 1, 'the certificate does not name the host the key was given to');
  const no = await run('key move gk-11 gk-10', 'no');
  assert.equal(no.status, 1);
  assert.equal((await tv.session.store.getKeyBySpki(spki(key)))?.fqdn, fq('gk-11'), 'nothing changed without confirmation');
  const moved = await run('key move gk-11 gk-10', 'yes');
  assert.equal(moved.status, 0, moved.text);
  assert.deepEqual(moved.prompts, [`Give the ec-p256 key ${spki(key).slice(0, 16)} of ${fq('gk-11')} to ${fq('gk-10')}?`]);
  const row = (await tv.session.store.getKeyBySpki(spki(key)))!;
  assert.equal(row.fqdn, fq('gk-10'));
  tv.session.vault.openKey(row).fill(0); // sealed for its new host: it decrypts
  const stored = await run(`getcrt ${cert}`);
  assert.equal(stored.status, 0, stored.text);
  const kept = await run('key rm gk-10', 'yes');
  assert.equal(kept.status, 1);
  assert.match(kept.text, /has a certificate or a request: kept/);
  const loose = await ca.genKey('ec-p256');
  assert.equal((await run(`getkey gk-11 ${loose}`)).status, 0);
  const rm = await run('key rm gk-11', 'yes');
  assert.equal(rm.status, 0, rm.text);
  assert.equal(await tv.session.store.getKeyBySpki(spki(loose)), undefined);
  assert.equal((await run(`getkey gk-11 ${loose}`)).status, 0, 'the removed key can be imported again');
  const audit = (await tv.session.store.listAudit()).filter((a) => (a.action === 'key-move' || a.action === 'key-rm') && a.outcome === 'ok').map((a) => [a.action, a.target]);
  assert.deepEqual(audit, [['key-move', fq('gk-10')], ['key-rm', fq('gk-11')]]);
});

test('lcrt shows serials whole', async () => {
  const r = await run('lcrt p12-*');
  assert.equal(r.status, 0, r.text);
  for (const c of await tv.session.store.currentCertificates('p12-*')) {
    const line = r.lines.find((l) => l.startsWith(`${c.fqdn.split('.')[0]} | `))!;
    assert.equal(line.split(' | ')[2], c.serial, line);
  }
});
