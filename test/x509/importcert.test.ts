/**
 * importcert on SQLite and on MariaDB, with real components only: a directory made with
 * the `openssl` command holding everything an operator's old certificate tree holds, and
 * a real Session on a real store. Shown here (SPEC section 6):
 *
 * - only valid pairs are added, paired by public key whatever the file names (a
 *   certificate in `ui-02.key`, its key in `ui-01.crt`), from PEM with several objects
 *   per file, DER, PKCS#1/SEC1 and encrypted PKCS#8 keys (the passphrase is asked);
 * - every other file is reported with its reason (certificate without key, key without
 *   certificate, damaged PEM, empty file, symbolic link loop; a CA certificate is
 *   passed over), the exit status is 1, and new hosts get a placeholder root@host:ssh
 *   marked unset;
 * - an empty directory is nothing to import (exit 0);
 * - importing again changes nothing; a failure inside the transaction leaves nothing;
 * - no private key in plaintext in the database; after rekey every key still decrypts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createTestDatabase, mariadbSkip, type TestDatabase } from '../support/mariadb.js';
import { createTestVault, removeTestDir, type TestVault } from '../support/scripted.js';
import { assertNoKeyMaterial, corruptPem, FixtureCa, openssl, pemLinesOf, unescapeDump } from './fixture-ca.js';
import { pairByKey, scanDirectory, wipeScan, type Scan } from '../../src/x509/import.js';

const DOMAIN = 'example.org';
const fq = (short: string): string => `${short}.${DOMAIN}`;
const KEY_PASSPHRASE = 'fixture key passphrase 31';

const mariaSkip = await mariadbSkip();

// ---------------------------------------------------------------------------------------
// The fixture, made once with openssl for both back ends.
// ---------------------------------------------------------------------------------------
const ca = await FixtureCa.create();
const root = mkdtempSync(join(tmpdir(), 'passtore-import-'));
after(() => {
  ca.remove();
  rmSync(root, { recursive: true, force: true });
});

/** Every fixture key file, to search the database for. */
const fixtureKeys: Array<{ label: string; file: string }> = [];
async function key(label: string, type: 'rsa-2048' | 'ec-p256'): Promise<string> {
  const file = await ca.genKey(type);
  fixtureKeys.push({ label, file });
  return file;
}

// The mixed directory.
const MIXED = join(root, 'mixed');
mkdirSync(join(MIXED, 'nested', 'deeper'), { recursive: true });
mkdirSync(join(MIXED, 'empty-dir'));
// web-01: the certificate in "ui-02.key", the key in "ui-01.crt".
const k1 = await key('web-01', 'rsa-2048');
const c1 = await ca.issue(k1, fq('web-01'));
writeFileSync(join(MIXED, 'ui-02.key'), readFileSync(c1));
writeFileSync(join(MIXED, 'ui-01.crt'), readFileSync(k1));
// web-02: certificate and PKCS#1 key in one file.
const k2 = await key('web-02', 'rsa-2048');
const c2 = await ca.issue(k2, fq('web-02'), { extraSans: ['www.example.com'] });
writeFileSync(join(MIXED, 'bundle.pem'), readFileSync(c2, 'utf8') + (await ca.traditionalPem(k2)));
// web-03: an encrypted PKCS#8 key.
const k3 = await key('web-03', 'ec-p256');
const c3 = await ca.issue(k3, fq('web-03'));
writeFileSync(join(MIXED, 'enc.key'), await ca.encryptedPem(k3, KEY_PASSPHRASE));
writeFileSync(join(MIXED, 'web-03.pem'), readFileSync(c3));
// web-04: a DER certificate; its SEC1 key two directories down.
const k4 = await key('web-04', 'ec-p256');
const c4 = await ca.issue(k4, fq('web-04'));
writeFileSync(join(MIXED, 'web-04.cer'), await ca.certDer(c4));
writeFileSync(join(MIXED, 'nested', 'deeper', 'web-04.pem'), await ca.traditionalPem(k4));
// A certificate without its key, a key without its certificate.
const k5 = await key('web-05 (not in the directory)', 'ec-p256');
writeFileSync(join(MIXED, 'lonely.crt'), readFileSync(await ca.issue(k5, fq('web-05'))));
const k6 = await key('orphan', 'ec-p256');
writeFileSync(join(MIXED, 'orphan.key'), readFileSync(k6));
// A damaged PEM (a certificate with base64 flipped in the middle), an empty file, the CA's certificate.
const k7 = await key('web-07 (damaged certificate)', 'ec-p256');
writeFileSync(join(MIXED, 'corrupt.pem'), await corruptPem(readFileSync(await ca.issue(k7, fq('web-07')), 'utf8'), ca.path('corrupt.pem')));
writeFileSync(join(MIXED, 'empty.pem'), '');
writeFileSync(join(MIXED, 'ca-chain.pem'), readFileSync(ca.caCert));
// A symbolic link loop.
symlinkSync('loop-b', join(MIXED, 'loop-a'));
symlinkSync('loop-a', join(MIXED, 'loop-b'));

const MIXED_PAIRS = ['web-01', 'web-02', 'web-03', 'web-04'].map(fq);
const MIXED_FILES = 12;
/** Every file not imported, and why. */
const MIXED_PROBLEMS: Array<[string, RegExp]> = [
  ['corrupt.pem', /damaged certificate block|not a readable|damaged PEM/],
  ['empty.pem', /^empty file$/],
  ['lonely.crt', /^certificate without its private key$/],
  ['loop-a', /^symbolic link loop$/],
  ['loop-b', /^symbolic link loop$/],
  ['orphan.key', /^private key \(ec-p256\) without its certificate$/],
];

// Empty directories.
const EMPTY = join(root, 'empty');
mkdirSync(EMPTY);
const EMPTY_TREE = join(root, 'empty-tree');
mkdirSync(join(EMPTY_TREE, 'a', 'b'), { recursive: true });

// Three good pairs for the failure injected inside the transaction (web-23 fails last).
const FAULT = join(root, 'fault');
mkdirSync(FAULT);
for (const n of ['web-21', 'web-22', 'web-23']) {
  const k = await key(n, 'ec-p256');
  writeFileSync(join(FAULT, `${n}.pem`), readFileSync(await ca.issue(k, fq(n)), 'utf8') + readFileSync(k, 'utf8'));
}

// A good pair, and certificates whose keys belong to other hosts of the vault (zz-01, zz-02).
const CROSS = join(root, 'cross');
mkdirSync(CROSS);
const k11 = await key('web-11', 'ec-p256');
writeFileSync(join(CROSS, 'web-11.pem'), readFileSync(await ca.issue(k11, fq('web-11')), 'utf8') + readFileSync(k11, 'utf8'));
const kz1 = await key('zz-01', 'ec-p256');
writeFileSync(join(CROSS, 'web-12.pem'), readFileSync(await ca.issue(kz1, fq('web-12')), 'utf8') + readFileSync(kz1, 'utf8'));
const kz2 = await key('zz-02', 'ec-p256');
writeFileSync(join(CROSS, 'web-13.crt'), readFileSync(await ca.issue(kz2, fq('web-13'))));

// An encrypted key alone with its certificate (wrong passphrase, then no passphrase).
const ENCRYPTED = join(root, 'encrypted');
mkdirSync(ENCRYPTED);
const k31 = await key('web-31', 'rsa-2048');
writeFileSync(join(ENCRYPTED, 'web-31.crt'), readFileSync(await ca.issue(k31, fq('web-31'))));
writeFileSync(join(ENCRYPTED, 'web-31.key'), await ca.encryptedPem(k31, KEY_PASSPHRASE));

const fixtureKeyObjects: Array<{ label: string; key: KeyObject }> = fixtureKeys.map((k) => ({ label: k.label, key: createPrivateKey(readFileSync(k.file)) }));

// ---------------------------------------------------------------------------------------

async function run(tv: TestVault, line: string, ...answers: string[]): Promise<{ status: number; lines: string[]; text: string }> {
  const from = tv.io.lines.length;
  const status = await tv.run(line, ...answers);
  const lines = tv.io.lines.slice(from);
  return { status, lines, text: lines.join('\n') };
}

/** The rows of the "not imported" table: file → reason. */
function problemRows(lines: string[]): Map<string, string> {
  const at = lines.indexOf('FILE | NOT IMPORTED BECAUSE');
  assert.ok(at >= 0, `a table of files not imported: ${lines.join('\n')}`);
  const rows = new Map<string, string>();
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith('error: ')) break;
    const i = line.indexOf(' | ');
    rows.set(line.slice(0, i), line.slice(i + 3));
  }
  return rows;
}

/** Counts of everything importcert may write. */
async function counts(tv: TestVault): Promise<Record<string, number>> {
  const s = tv.session.store;
  const hosts = await s.findHosts('*');
  const { entries, keys } = await s.allSecrets();
  let certs = 0;
  for (const h of hosts) certs += (await s.listCertificates(h.id)).length;
  return { hosts: hosts.length, entries: entries.length, keys: keys.length, certs, audit: (await s.listAudit()).filter((a) => a.action === 'import' && a.outcome === 'ok').length };
}

// A large directory (over the 400 files from which reader threads read): the mixed
// directory's top level and 220 copies of web-21's pair, in two files each.
const LARGE = join(root, 'large');
mkdirSync(LARGE);
for (const f of ['ui-02.key', 'ui-01.crt', 'bundle.pem', 'web-03.pem', 'web-04.cer', 'lonely.crt', 'orphan.key', 'corrupt.pem', 'empty.pem', 'ca-chain.pem']) writeFileSync(join(LARGE, f), readFileSync(join(MIXED, f)));
mkdirSync(join(LARGE, 'copies'));
{
  const [cert, keyPem] = readFileSync(join(FAULT, 'web-21.pem'), 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/);
  for (let i = 0; i < 220; i++) {
    writeFileSync(join(LARGE, 'copies', `c${i}.pem`), cert!);
    writeFileSync(join(LARGE, 'copies', `k${i}.pem`), keyPem!);
  }
}

/** What a scan found, in a form to compare (the private keys by hash). */
function scanned(scan: Scan) {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  return {
    files: scan.files,
    certs: scan.certs.map((c) => [c.file, c.facts.fingerprintSha256, c.facts.spkiSha256, c.host, c.ca, sha(c.der), c.cert.fingerprint256]),
    keys: scan.keys.map((k) => [k.file, k.facts.type, k.facts.spkiSha256, sha(k.pkcs8)]),
    locked: scan.locked.map((e) => e.file),
    unreadable: scan.unreadable.map((u) => `${u.file}: ${u.reason}`).sort(),
  };
}

test('reader threads find exactly what one thread finds, in the same order', async () => {
  for (const [dir, threads] of [[MIXED, 3], [LARGE, undefined]] as const) {
    const one = await scanDirectory(dir, { threads: 1 });
    const progress: number[] = [];
    const many = await scanDirectory(dir, { threads, progress: (n) => progress.push(n) });
    assert.deepEqual(scanned(many), scanned(one), dir);
    if (dir === LARGE) {
      assert.equal(one.files, 450);
      assert.deepEqual(progress, [], 'no progress line below 500 files');
      const { pairs, unmatched } = pairByKey(many);
      assert.deepEqual(pairs.map((p) => p.host).sort(), ['web-01', 'web-02', 'web-21'].map(fq));
      assert.equal(unmatched.filter((u) => /^the same (private key|certificate) as /.test(u.reason)).length, 438, 'each copy reported as a copy');
    }
    wipeScan(one);
    wipeScan(many);
    assert.ok(many.keys.every((k) => k.pkcs8.every((b) => b === 0)), 'wiped');
  }
});

for (const backend of ['sqlite', 'mariadb'] as const) {
  describe(`importcert on ${backend}`, { skip: backend === 'mariadb' ? mariaSkip : false }, () => {
    let db: TestDatabase | undefined;
    let tv: TestVault;

    before(async () => {
      if (backend === 'mariadb') db = await createTestDatabase();
      tv = await createTestVault(db ? { db: db.url, dbPasswordFile: db.passwordFile, domain: DOMAIN } : { domain: DOMAIN });
    });

    after(async () => {
      await tv?.close();
      if (tv) removeTestDir(tv);
      await db?.drop();
    });

    test('an empty directory (or one holding only empty directories) is nothing to import: exit 0', async () => {
      for (const dir of [EMPTY, EMPTY_TREE]) {
        const r = await run(tv, `importcert ${dir}`);
        assert.equal(r.status, 0, r.text);
        assert.deepEqual(r.lines, [`${dir}: no files; nothing to import`]);
      }
      assert.deepEqual(await counts(tv), { hosts: 0, entries: 0, keys: 0, certs: 0, audit: 0 });
    });

    test('a mixed directory: only valid pairs are added, every other file is reported, exit 1', async () => {
      const r = await run(tv, `importcert ${MIXED}`, KEY_PASSPHRASE);
      assert.equal(r.status, 1, r.text);
      assert.deepEqual(tv.io.prompts.slice(-1), ['Passphrase for the encrypted key in enc.key (empty to skip)'], 'the encrypted key asked for its passphrase');

      const current = await tv.session.store.currentCertificates('*');
      assert.deepEqual(current.map((c) => c.fqdn), MIXED_PAIRS, 'exactly the valid pairs are stored');
      const certFiles: Record<string, string> = { 'web-01': c1, 'web-02': c2, 'web-03': c3, 'web-04': c4 };
      const keyFiles: Record<string, string> = { 'web-01': k1, 'web-02': k2, 'web-03': k3, 'web-04': k4 };
      for (const [short, file] of Object.entries(certFiles)) {
        const row = current.find((c) => c.fqdn === fq(short))!;
        assert.equal(row.fingerprintSha256, await ca.fingerprint(file), `${short}: the right certificate`);
        const spki = createHash('sha256').update(createPublicKey(readFileSync(keyFiles[short]!)).export({ type: 'spki', format: 'der' })).digest('hex');
        assert.equal(row.keySpkiSha256, spki, `${short}: paired with its own key`);
        const stored = (await tv.session.store.getKeyBySpki(spki))!;
        assert.equal(stored.fqdn, fq(short));
        assert.equal(stored.origin, 'imported');
        assert.equal(stored.state, 'current');
      }
      assert.equal(current.find((c) => c.fqdn === fq('web-02'))!.sans, 'web-02.example.org,www.example.com');
      for (const misleading of ['ui-01', 'ui-02']) assert.equal(await tv.session.store.getHost(fq(misleading)), undefined, `no host from the file name ${misleading}`);

      const problems = problemRows(r.lines);
      assert.deepEqual([...problems.keys()].sort(), MIXED_PROBLEMS.map(([f]) => f).sort(), `every other file, and only those, reported:\n${r.text}`);
      for (const [file, why] of MIXED_PROBLEMS) assert.match(problems.get(file)!, why, `reason for ${file}`);

      const summary = r.lines.find((l) => l.startsWith(`${MIXED}: `));
      assert.equal(summary, `${MIXED}: ${MIXED_FILES} files read; 4 pairs added; 4 new hosts with an unset root password: ${MIXED_PAIRS.join(' ')}`);
      assert.ok(r.lines.includes('passed over 1 CA certificate (chain files): ca-chain.pem'), r.text);
      // The CA certificate found (the root that issued them, all the CA gave) is each one's stored chain.
      assert.ok(r.lines.includes('4 certificates were stored with an issuing chain of the CA certificates found'), r.text);
      const rootPem = new X509Certificate(readFileSync(ca.caCert)).toString();
      for (const c of current) assert.equal(c.chainPem, rootPem, `${c.fqdn}: its chain is the CA's certificate`);
      assert.match(r.lines.at(-1)!, /^error: 6 items were not imported \(listed above\); the 4 valid ones were$/);
    });

    test('new hosts get a placeholder root@host:ssh marked unset, listed as (unset)', async () => {
      const entries = await tv.session.store.findEntries('*');
      assert.deepEqual(entries.map((e) => [e.fqdn, e.user, e.service, e.state, e.secretCiphertext]), MIXED_PAIRS.map((h) => [h, 'root', 'ssh', 'unset', null]));
      const l = await run(tv, 'list');
      assert.equal(l.status, 0, l.text);
      for (const h of ['web-01', 'web-02', 'web-03', 'web-04']) assert.ok(l.lines.includes(`${h} |  | root:ssh (unset) | root`), l.text);
      const c = await run(tv, 'lcrt');
      assert.equal(c.status, 0, c.text);
      for (const h of ['web-01', 'web-02', 'web-03', 'web-04']) assert.match(c.text, new RegExp(`^${h} \\| CN=${h}\\.example\\.org,O=Test,DC=example,DC=org \\| .* \\| yes \\| - \\| never$`, 'm'));
    });

    test('importing the same directory again adds nothing and reports "already in the vault"', async () => {
      const before = await counts(tv);
      const r = await run(tv, `importcert ${MIXED}`, KEY_PASSPHRASE);
      assert.equal(r.status, 1, r.text);
      const problems = problemRows(r.lines);
      for (const file of ['ui-02.key', 'bundle.pem', 'web-03.pem', 'web-04.cer']) assert.match(problems.get(file) ?? '', /^already in the vault \(web-0\d\.example\.org\)$/, `${file}: ${r.text}`);
      assert.deepEqual(await counts(tv), before, 'nothing added or changed');
      assert.match(r.lines.at(-1)!, /^error: 10 items were not imported \(listed above\)$/);
    });

    test('an encrypted key with a wrong or no passphrase is reported, and nothing of its pair stored', async () => {
      const before = await counts(tv);
      const wrong = await run(tv, `importcert ${ENCRYPTED}`, 'not the passphrase');
      assert.equal(wrong.status, 1, wrong.text);
      assert.match(problemRows(wrong.lines).get('web-31.key') ?? '', /wrong passphrase/);
      assert.match(problemRows(wrong.lines).get('web-31.crt') ?? '', /^certificate without its private key$/);
      const skipped = await run(tv, `importcert ${ENCRYPTED}`, '');
      assert.equal(skipped.status, 1, skipped.text);
      assert.match(problemRows(skipped.lines).get('web-31.key') ?? '', /skipped \(no passphrase given\)/);
      assert.deepEqual(await counts(tv), before);
      assert.equal(await tv.session.store.getHost(fq('web-31')), undefined);
    });

    test('a failure inside the import transaction leaves nothing half-written', async () => {
      // A real database fault on the last certificate insert (web-23), after web-21 and
      // web-22 were written inside the same transaction.
      if (db) {
        await db.sql("CREATE TRIGGER fault_web23 BEFORE INSERT ON certificates FOR EACH ROW SET NEW.host_id = IF(NEW.subject LIKE '%web-23%', NULL, NEW.host_id)");
      } else {
        const side = new Database(tv.config.db.slice('sqlite:'.length));
        side.exec("CREATE TRIGGER fault_web23 BEFORE INSERT ON certificates WHEN NEW.subject LIKE '%web-23%' BEGIN SELECT RAISE(ABORT, 'injected fault'); END");
        side.close();
      }
      const before = await counts(tv);
      const hostsBefore = (await tv.session.store.findHosts('*')).map((h) => h.fqdn);
      try {
        const r = await run(tv, `importcert ${FAULT}`);
        assert.notEqual(r.status, 0, r.text);
        assert.match(r.lines.at(-1)!, /^error: /);
        assert.ok(!r.lines.some((l) => / pairs added/.test(l)), 'no success reported');
        assert.deepEqual(await counts(tv), before, 'no host, entry, key, certificate or audit record of the failed run');
        assert.deepEqual((await tv.session.store.findHosts('*')).map((h) => h.fqdn), hostsBefore);
        assert.equal((await tv.session.store.currentCertificates('web-2?.example.org')).length, 0);
      } finally {
        if (db) await db.sql('DROP TRIGGER fault_web23');
        else {
          const side = new Database(tv.config.db.slice('sqlite:'.length));
          side.exec('DROP TRIGGER fault_web23');
          side.close();
        }
      }
      // The fault gone, the same directory imports whole.
      const again = await run(tv, `importcert ${FAULT}`);
      assert.equal(again.status, 0, again.text);
      assert.equal((await tv.session.store.currentCertificates('web-2?.example.org')).length, 3);
    });

    test('a certificate whose key belongs to another host of the vault is reported; the valid pairs are still added', async () => {
      for (const [host, file] of [['zz-01', kz1], ['zz-02', kz2]] as const) {
        assert.equal(await tv.run(`host add ${host}`), 0, tv.io.text());
        const g = await run(tv, `getkey ${host} ${file}`);
        assert.equal(g.status, 0, g.text);
      }
      const before = await counts(tv);
      const r = await run(tv, `importcert ${CROSS}`);
      // SPEC 6: "adds only valid pairs ... reports unmatched files": web-11 is valid; web-12's
      // key is zz-01's and web-13's is zz-02's (the classic wrong-key mistake).
      assert.equal(r.status, 1, r.text);
      assert.deepEqual((await tv.session.store.currentCertificates('web-1?.example.org')).map((c) => c.fqdn), [fq('web-11')], `web-11 added:\n${r.text}`);
      const problems = problemRows(r.lines);
      assert.match(problems.get('web-12.pem') ?? '', /zz-01\.example\.org/);
      assert.match(problems.get('web-13.crt') ?? '', /zz-02\.example\.org/);
      for (const h of ['zz-01', 'zz-02', 'web-12', 'web-13']) {
        const host = await tv.session.store.getHost(fq(h));
        if (host) assert.equal((await tv.session.store.listCertificates(host.id)).length, 0, `no certificate stored for ${h}`);
      }
      const after = await counts(tv);
      assert.equal(after.certs, before.certs + 1);
    });

    /** The database's bytes: the SQLite file and its WAL, or the MariaDB dump (escaped and unescaped). */
    async function databaseBytes(): Promise<Array<[string, Buffer]>> {
      if (db) {
        const dump = await db.dump();
        return [
          ['the MariaDB dump', Buffer.from(dump, 'latin1')],
          ['the MariaDB dump (unescaped)', unescapeDump(dump)],
        ];
      }
      const file = tv.config.db.slice('sqlite:'.length);
      return [file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => [f, readFileSync(f)] as [string, Buffer]);
    }

    async function assertNoPlaintextKeys(): Promise<void> {
      const haystacks = await databaseBytes();
      const all = Buffer.concat(haystacks.map(([, b]) => b));
      const certs = await tv.session.store.currentCertificates('*');
      assert.ok(certs.length >= 4);
      for (const c of certs) for (const line of pemLinesOf(c.pem)) assert.ok(all.includes(Buffer.from(line)), 'positive control: the stored certificates are in the bytes searched');
      const { keys } = await tv.session.store.allSecrets();
      const stored = keys.map((k) => {
        const pkcs8 = tv.session.vault.openKey(k);
        const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
        pkcs8.fill(0);
        return { label: `${k.fqdn} (stored)`, key };
      });
      for (const { label, key } of [...fixtureKeyObjects, ...stored]) {
        for (const [where, bytes] of haystacks) assertNoKeyMaterial(bytes, key, where, label);
      }
      for (const [where, bytes] of haystacks) {
        assert.ok(!bytes.includes(Buffer.from(KEY_PASSPHRASE)), `${where} holds the encrypted key's passphrase`);
        assert.ok(!bytes.includes(Buffer.from('ENCRYPTED PRIVATE KEY')), `${where} holds an encrypted key file`);
      }
    }

    test('no private key in plaintext in the database after importcert', async () => {
      await assertNoPlaintextKeys();
    });

    test('rekey after importcert: every stored key still decrypts, and a new certificate checks against its key', async () => {
      const r = await run(tv, 'rekey', 'y');
      assert.equal(r.status, 0, r.text);
      const { keys } = await tv.session.store.allSecrets();
      assert.ok(keys.length >= 7);
      for (const k of keys) {
        const pkcs8 = tv.session.vault.openKey(k);
        const spki = createHash('sha256').update(createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' })).digest('hex');
        pkcs8.fill(0);
        assert.equal(spki, k.spkiSha256, `${k.fqdn}'s key decrypts to itself`);
      }
      for (const h of ['web-01', 'web-02', 'web-03', 'web-04']) {
        const s = await run(tv, `showcrt ${h}`);
        assert.equal(s.status, 0, s.text);
        assert.match(s.text, /^private key: .*, imported .*, matches$/m);
      }
      // A renewed certificate for web-01's imported key: getcrt decrypts the key to check it.
      const renewed = await ca.issue(k1, fq('web-01'), { days: 500 });
      const g = await run(tv, `getcrt ${renewed}`);
      assert.equal(g.status, 0, g.text);
      assert.match(g.text, /^stored the certificate for web-01\.example\.org .*; the previous pair is kept as history$/);
      const host = (await tv.session.store.getHost(fq('web-01')))!;
      assert.deepEqual((await tv.session.store.listCertificates(host.id)).map((c) => c.state), ['current', 'history']);
      // The encrypted-key pair too (web-03, EC).
      const renewed3 = await ca.issue(k3, fq('web-03'), { days: 500 });
      const g3 = await run(tv, `getcrt ${renewed3}`);
      assert.equal(g3.status, 0, g3.text);
      await assertNoPlaintextKeys();
      assert.match(await openssl(['x509', '-in', renewed, '-noout', '-subject']), /web-01\.example\.org/);
    });
  });
}
