/**
 * Certificates end to end, on SQLite and on MariaDB, with real components only: a real
 * Session on a real store, keys made by Node's crypto through `crtreq`, and a fixture CA
 * driven with the `openssl` command. Shown here (SPEC section 6):
 *
 * - crtreq for rsa-2048, rsa-4096 and ec-p256 (and for a pattern) writes requests that
 *   `openssl req -verify` accepts, with the subject from dn_template and a
 *   subjectAltName holding the FQDN and the --san names;
 * - the CA's certificates are stored by getcrt (the host found by key, not by file
 *   name), listed by lcrt with the days left, and shown by showcrt with their history;
 * - refusals, each a one-line error with a non-zero status that stores nothing: a
 *   certificate naming another host than its key's, one whose key is not in the vault,
 *   an expired one (stored with --force), a weak key;
 * - no private key in any form in the database bytes (SQLite file and WAL, MariaDB dump);
 * - after rekey every stored key still decrypts, and new certificates check against it.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daysLeft } from '../../src/x509/certificate.js';
import { createTestDatabase, mariadbSkip, type TestDatabase } from '../support/mariadb.js';
import { createTestVault, removeTestDir, type TestVault } from '../support/scripted.js';
import { assertNoKeyMaterial, FixtureCa, openssl, opensslOk, pemLinesOf, unescapeDump } from './fixture-ca.js';

const DN_TEMPLATE = '/DC=org/DC=example/O=Test/CN={fqdn}';
/** The subject dn_template gives, as passtore shows every DN (RFC 4514). */
const shown = (fqdn: string): string => `CN=${fqdn},O=Test,DC=example,DC=org`;
const DOMAIN = 'example.org';
const fq = (short: string): string => `${short}.${DOMAIN}`;

const mariaSkip = await mariadbSkip();

// Made once for both back ends: the CA, a key the vault never sees, a weak key.
const ca = await FixtureCa.create();
const strangerKey = await ca.genKey('ec-p256');
const weakKey = await ca.genKey('rsa-1024');
after(() => ca.remove());

/** Runs a command line; returns its status and only the lines it printed. */
async function run(tv: TestVault, line: string, ...answers: string[]): Promise<{ status: number; lines: string[]; text: string }> {
  const from = tv.io.lines.length;
  const status = await tv.run(line, ...answers);
  const lines = tv.io.lines.slice(from);
  return { status, lines, text: lines.join('\n') };
}

/** Every host's certificates, keys and requests with their states: what a refusal must not change. */
async function snapshot(tv: TestVault): Promise<unknown> {
  const store = tv.session.store;
  const hosts = await store.findHosts('*');
  const out: Record<string, unknown> = {};
  for (const h of hosts) {
    const [certs, keys, requests] = await Promise.all([store.listCertificates(h.id), store.listKeys(h.id), store.listRequests(h.id)]);
    out[h.fqdn] = {
      certs: certs.map((c) => [c.id, c.state, c.fingerprintSha256]),
      keys: keys.map((k) => [k.id, k.state]),
      requests: requests.map((r) => [r.id, r.state]),
    };
  }
  return { hosts: out, current: (await store.currentCertificates('*')).map((c) => [c.fqdn, c.fingerprintSha256]) };
}

/** Asserts a refusal: non-zero status, exactly one line, an error matching `why`. */
function assertRefused(r: { status: number; lines: string[] }, why: RegExp): void {
  assert.notEqual(r.status, 0, `refused with a non-zero status: ${r.lines.join(' / ')}`);
  assert.equal(r.lines.length, 1, `one line of output, got: ${JSON.stringify(r.lines)}`);
  assert.ok(!r.lines[0]!.includes('\n'), 'the error is one line');
  assert.match(r.lines[0]!, /^error: /);
  assert.match(r.lines[0]!, why);
}

/** The DNS names of a request or certificate's subjectAltName, as openssl prints them. */
function sanOf(opensslText: string): string[] {
  const m = /X509v3 Subject Alternative Name:\s*\n\s*(.+)\n/.exec(opensslText);
  assert.ok(m, 'has a subjectAltName');
  return m[1]!.split(/,\s*/).map((s) => s.trim());
}

for (const backend of ['sqlite', 'mariadb'] as const) {
  describe(`certificates on ${backend}`, { skip: backend === 'mariadb' ? mariaSkip : false }, () => {
    let db: TestDatabase | undefined;
    let tv: TestVault;
    let work: string;
    let reqDir: string;
    /** The issued certificate files, by host. */
    const issued = new Map<string, string>();

    before(async () => {
      if (backend === 'mariadb') db = await createTestDatabase();
      tv = await createTestVault(db ? { db: db.url, dbPasswordFile: db.passwordFile, domain: DOMAIN } : { domain: DOMAIN });
      tv.config.dnTemplate = DN_TEMPLATE;
      work = mkdtempSync(join(tmpdir(), 'passtore-x509-'));
      reqDir = join(work, 'requests');
      mkdirSync(reqDir);
      for (const h of ['ui-01', 'ui-02', 'ui-03', 'ce-01', 'ce-02', 'ce-03', 'wn-01', 'wn-02', 'wn-03', 'wn-04', 'wn-05']) {
        assert.equal(await tv.run(`host add ${h}`), 0, tv.io.text());
      }
    });

    after(async () => {
      await tv?.close();
      if (tv) removeTestDir(tv);
      if (work) rmSync(work, { recursive: true, force: true });
      await db?.drop();
    });

    const cases = [
      { host: 'ui-01', type: 'rsa-2048', san: ' --san ui-01-alias,www.example.com', sans: ['ui-01.example.org', 'ui-01-alias.example.org', 'www.example.com'], key: /Public-Key: \(2048 bit\)/ },
      { host: 'ui-02', type: 'rsa-4096', san: '', sans: ['ui-02.example.org'], key: /Public-Key: \(4096 bit\)/ },
      { host: 'ui-03', type: 'ec-p256', san: ' --san ui-03-alias', sans: ['ui-03.example.org', 'ui-03-alias.example.org'], key: /ASN1 OID: prime256v1/ },
    ];

    test('crtreq makes a request openssl verifies, for each key type, with the subject from dn_template and the SANs', async () => {
      for (const c of cases) {
        const r = await run(tv, `crtreq ${c.host} --type ${c.type}${c.san} --out ${reqDir}`);
        assert.equal(r.status, 0, r.text);
        const file = join(reqDir, `${fq(c.host)}.req`);
        assert.ok(existsSync(file), `${file} written`);
        assert.equal(statSync(file).mode & 0o777, 0o644, 'a request is public: mode 0644');
        const verify = await opensslOk(['req', '-verify', '-noout', '-in', file]);
        assert.ok(verify.ok, `openssl req -verify accepts the ${c.type} request: ${verify.output}`);
        assert.match(verify.output, /verify OK|self-signature ok/i);
        const subject = await openssl(['req', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253']);
        assert.equal(subject.trim(), `subject=CN=${fq(c.host)},O=Test,DC=example,DC=org`, 'subject in dn_template order');
        const compat = await openssl(['req', '-in', file, '-noout', '-subject', '-nameopt', 'compat']);
        assert.equal(compat.trim(), `subject=${DN_TEMPLATE.replace('{fqdn}', fq(c.host))}`);
        const text = await openssl(['req', '-in', file, '-noout', '-text']);
        assert.deepEqual(sanOf(text), c.sans.map((s) => `DNS:${s}`), 'subjectAltName: the FQDN, then the --san names');
        assert.match(text, c.key, `a ${c.type} key`);
        const host = (await tv.session.store.getHost(fq(c.host)))!;
        const [req] = await tv.session.store.listRequests(host.id);
        assert.equal(req!.state, 'created');
        assert.equal(req!.pem.trim(), readFileSync(file, 'utf8').trim(), 'the stored request is the written one');
        assert.equal(req!.subject, shown(fq(c.host)));
        const [key] = await tv.session.store.listKeys(host.id);
        assert.equal(key!.keyType, c.type);
        assert.equal(key!.state, 'pending');
        assert.equal(key!.origin, 'generated');
        const reqSpki = await openssl(['req', '-in', file, '-noout', '-pubkey']);
        assert.equal(createHash('sha256').update(createPublicKey(reqSpki).export({ type: 'spki', format: 'der' })).digest('hex'), key!.spkiSha256, 'the request carries the stored key');
      }
    });

    test('crtreq with an RFC 4514 dn_template keeps the written order (most specific first)', async () => {
      tv.config.dnTemplate = 'CN={fqdn},O=Test,DC=example,DC=org';
      try {
        const dir = join(work, 'rfc4514');
        mkdirSync(dir);
        const r = await run(tv, `crtreq wn-05 --type ec-p256 --out ${dir}`);
        assert.equal(r.status, 0, r.text);
        const file = join(dir, `${fq('wn-05')}.req`);
        assert.ok((await opensslOk(['req', '-verify', '-noout', '-in', file])).ok);
        const subject = await openssl(['req', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253']);
        assert.equal(subject.trim(), `subject=CN=${fq('wn-05')},O=Test,DC=example,DC=org`);
      } finally {
        tv.config.dnTemplate = DN_TEMPLATE;
      }
    });

    test('crtreq for a pattern makes one verifiable request per host (the default key type)', async () => {
      const dir = join(work, 'wn');
      mkdirSync(dir);
      const r = await run(tv, `crtreq wn-* --replace --out ${dir}`);
      assert.equal(r.status, 0, r.text);
      for (let i = 1; i <= 5; i++) {
        const file = join(dir, `${fq(`wn-0${i}`)}.req`);
        const v = await opensslOk(['req', '-verify', '-noout', '-in', file]);
        assert.ok(v.ok, `${file}: ${v.output}`);
        const text = await openssl(['req', '-in', file, '-noout', '-text']);
        assert.match(text, /Public-Key: \(2048 bit\)/);
        assert.deepEqual(sanOf(text), [`DNS:${fq(`wn-0${i}`)}`]);
      }
      assert.equal((await tv.session.store.openRequests('wn-*.example.org')).length, 5);
    });

    test('the fixture CA signs each request; getcrt stores it whatever the file is called; lcrt and showcrt show it', async () => {
      const names = ['ui-03.example.org.pem', 'ui-01.example.org.pem', 'not-a-host.crt'];
      for (const [i, c] of cases.entries()) {
        const cert = await ca.sign(join(reqDir, `${fq(c.host)}.req`), { out: join(work, names[i]!) });
        const text = await openssl(['x509', '-in', cert, '-noout', '-text']);
        assert.deepEqual(sanOf(text), c.sans.map((s) => `DNS:${s}`), 'the CA copied the SANs');
        issued.set(c.host, cert);
      }
      // ui-03's certificate comes in a chain file with the CA's: the host's is stored, the CA's as its chain.
      const chain = join(work, 'chain.pem');
      writeFileSync(chain, readFileSync(issued.get('ui-03')!, 'utf8') + readFileSync(ca.caCert, 'utf8'));
      for (const c of cases) {
        const file = c.host === 'ui-03' ? chain : issued.get(c.host)!;
        const r = await run(tv, `getcrt ${file}`);
        assert.equal(r.status, 0, r.text);
        assert.match(r.text, new RegExp(`^stored the certificate for ${fq(c.host).replace(/\./g, '\\.')} \\(not after \\d{4}-\\d\\d-\\d\\d\\)${c.host === 'ui-03' ? `\n${fq('ui-03').replace(/\./g, '\\.')}: stored with its issuing chain: CN=Passtore Fixture CA,O=Test,DC=example,DC=org` : ''}$`));
      }

      const current = await tv.session.store.currentCertificates('*');
      assert.deepEqual(current.map((c) => c.fqdn), cases.map((c) => fq(c.host)));
      for (const c of cases) {
        const row = current.find((x) => x.fqdn === fq(c.host))!;
        assert.equal(row.fingerprintSha256, await ca.fingerprint(issued.get(c.host)!));
        assert.equal(row.keySpkiSha256, row.spkiSha256, 'paired with its key');
        assert.equal(row.keyType, c.type);
        assert.equal(row.sans, c.sans.join(','));
        assert.equal(row.subject, shown(fq(c.host)));
        const serial = (await openssl(['x509', '-in', issued.get(c.host)!, '-noout', '-serial'])).trim().replace(/^serial=/, '').toLowerCase();
        assert.equal(row.serial.replace(/^0+/, ''), serial.replace(/^0+/, ''), 'serial as openssl reads it');
        const host = (await tv.session.store.getHost(fq(c.host)))!;
        const [req] = await tv.session.store.listRequests(host.id);
        assert.equal(req!.state, 'fulfilled');
        const [key] = await tv.session.store.listKeys(host.id);
        assert.equal(key!.state, 'current');
      }

      const l = await run(tv, 'lcrt ui-*');
      assert.equal(l.status, 0, l.text);
      assert.equal(l.lines[0], 'HOST | SUBJECT | SERIAL | NOT AFTER | DAYS | KEY | RENEWAL | DEPLOYED');
      for (const c of cases) {
        const row = current.find((x) => x.fqdn === fq(c.host))!;
        const days = daysLeft(row.notAfter);
        assert.ok(days >= 363 && days <= 365, `about a year left (${days})`);
        const line = l.lines.find((x) => x.startsWith(`${c.host} | `));
        assert.ok(line, `lcrt lists ${c.host}: ${l.text}`);
        const cells = line.split(' | ');
        assert.equal(cells[1], row.subject);
        assert.equal(cells[3], row.notAfter.slice(0, 10));
        assert.equal(cells[4], String(days), 'days left');
        assert.equal(cells[5], 'yes', 'key matches');
        assert.equal(cells[6], '-', 'no open request');
        assert.equal(cells[7], 'never', 'not deployed');
      }
      assert.match(l.lines.at(-1)!, /^3 certificates: 0 expired, 0 within 30 days; 0 open requests$/);

      const s = await run(tv, 'showcrt ui-01');
      assert.equal(s.status, 0, s.text);
      const row = current.find((x) => x.fqdn === fq('ui-01'))!;
      assert.ok(s.lines.includes('host:        ui-01.example.org'), s.text);
      assert.ok(s.lines.includes(`subject:     ${shown(fq('ui-01'))}`), s.text);
      assert.ok(s.lines.includes('issuer:      CN=Passtore Fixture CA,O=Test,DC=example,DC=org'), s.text);
      assert.ok(s.lines.includes('DNS names:   ui-01.example.org, ui-01-alias.example.org, www.example.com'), s.text);
      assert.ok(s.lines.includes(`not after:   ${row.notAfter} (${daysLeft(row.notAfter)} days left)`), s.text);
      assert.ok(s.lines.includes(`SHA-256:     ${row.fingerprintSha256}`), s.text);
      assert.match(s.text, /^private key: rsa-2048, generated \d{4}-\d\d-\d\d by alice, matches$/m);
      assert.match(s.text, new RegExp(`^current \\| ${row.serial} \\| ${row.notAfter.slice(0, 10)} \\| \\d{4}-\\d\\d-\\d\\d \\| alice$`, 'm'));
      assert.match(s.text, /^current \| rsa-2048 \| [0-9a-f]{32}… \| generated \| /m);
      assert.match(s.text, /^fulfilled \| CN=ui-01\.example\.org,O=Test,DC=example,DC=org \| ui-01\.example\.org,ui-01-alias\.example\.org,www\.example\.com \| /m);
      assert.ok(!/BEGIN|PRIVATE KEY/.test(s.text), 'showcrt never shows a key');
    });

    test('refused: a certificate for host A on the key of host B (nothing stored)', async () => {
      const r0 = await run(tv, `crtreq ce-02 --type ec-p256 --out ${reqDir}`);
      assert.equal(r0.status, 0, r0.text);
      // Host B's request signed with host A's names: the key is ce-02's, the names ce-01's.
      const cert = await ca.sign(join(reqDir, `${fq('ce-02')}.req`), { subject: `/CN=${fq('ce-01')}`, sans: [fq('ce-01')] });
      const before = await snapshot(tv);
      const r = await run(tv, `getcrt ${cert}`);
      assertRefused(r, /does not name ce-02\.example\.org, the host its key belongs to/);
      assert.deepEqual(await snapshot(tv), before, 'nothing stored or changed');
      const b = (await tv.session.store.getHost(fq('ce-02')))!;
      assert.equal((await tv.session.store.listKeys(b.id))[0]!.state, 'pending', 'B\'s key still waits for its certificate');
    });

    test('refused: a certificate whose key is not in the vault (nothing stored)', async () => {
      const cert = await ca.issue(strangerKey, fq('ui-01'));
      const before = await snapshot(tv);
      const r = await run(tv, `getcrt ${cert}`);
      assertRefused(r, /matches no private key in the vault/);
      assert.deepEqual(await snapshot(tv), before, 'nothing stored or changed');
    });

    test('refused: an expired certificate (nothing stored); stored with --force', async () => {
      const r0 = await run(tv, `crtreq ce-03 --type ec-p256 --out ${reqDir}`);
      assert.equal(r0.status, 0, r0.text);
      const cert = await ca.sign(join(reqDir, `${fq('ce-03')}.req`), { notBefore: '20200101000000Z', notAfter: '20200201000000Z' });
      assert.match(await openssl(['x509', '-in', cert, '-noout', '-enddate']), /Feb {1,2}1 00:00:00 2020 GMT/);
      const before = await snapshot(tv);
      const r = await run(tv, `getcrt ${cert}`);
      assertRefused(r, /certificate for ce-03\.example\.org expired on 2020-02-01; refused \(getcrt --force stores it anyway\)/);
      assert.deepEqual(await snapshot(tv), before, 'nothing stored or changed');

      const f = await run(tv, `getcrt ${cert} --force`);
      assert.equal(f.status, 0, f.text);
      assert.match(f.text, /^stored the certificate for ce-03\.example\.org \(not after 2020-02-01\)$/);
      const [row] = await tv.session.store.currentCertificates(fq('ce-03'));
      assert.equal(row!.fingerprintSha256, await ca.fingerprint(cert));
      const l = await run(tv, 'lcrt ce-03');
      assert.equal(l.status, 0, l.text);
      assert.match(l.text, /^ce-03 \| .* \| 2020-02-01 \| expired \d+d ago \| yes \| - \| never$/m);
      assert.match(l.lines.at(-1)!, /^1 certificate: 1 expired, /);
    });

    test('refused: a key weaker than RSA 2048 (nothing stored)', async () => {
      const before = await snapshot(tv);
      const r = await run(tv, `getkey ce-01 ${weakKey}`);
      assertRefused(r, /RSA key of 1024 bits refused/);
      assert.deepEqual(await snapshot(tv), before);
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
      const { keys } = await tv.session.store.allSecrets();
      assert.ok(keys.length >= 10, `keys stored (${keys.length})`);
      const haystacks = await databaseBytes();
      const all = Buffer.concat(haystacks.map(([, b]) => b));
      // Positive control: the scan sees the stored (public) certificates.
      const certs = await tv.session.store.currentCertificates('*');
      for (const c of certs) for (const line of pemLinesOf(c.pem)) assert.ok(all.includes(Buffer.from(line)), 'the certificates are in the bytes searched');
      for (const k of keys) {
        const pkcs8 = tv.session.vault.openKey(k);
        const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
        pkcs8.fill(0);
        for (const [where, bytes] of haystacks) assertNoKeyMaterial(bytes, key, where, `${k.fqdn} (${k.keyType})`);
      }
    }

    test('no private key in plaintext in the database after crtreq and getcrt', async () => {
      await assertNoPlaintextKeys();
    });

    test('rekey after certificates: every stored key still decrypts; showcrt works; a new certificate checks against its key', async () => {
      const before = await tv.session.store.allSecrets();
      const r = await run(tv, 'rekey', 'y');
      assert.equal(r.status, 0, r.text);
      assert.match(r.text, /^rekeyed: \d+ secrets re-encrypted under a new data key; a new root key sealed to every key slot$/);
      const { keys } = await tv.session.store.allSecrets();
      assert.equal(keys.length, before.keys.length);
      for (const k of keys) {
        const old = before.keys.find((o) => o.id === k.id)!;
        assert.ok(!old.keyCiphertext.bytes.equals(k.keyCiphertext.bytes), `${k.fqdn}'s key was re-encrypted`);
        const pkcs8 = tv.session.vault.openKey(k);
        const spki = createHash('sha256').update(createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' })).digest('hex');
        pkcs8.fill(0);
        assert.equal(spki, k.spkiSha256, `${k.fqdn}'s key decrypts to itself`);
      }
      for (const c of cases) {
        const s = await run(tv, `showcrt ${c.host}`);
        assert.equal(s.status, 0, s.text);
        assert.match(s.text, /^private key: .*, matches$/m);
      }

      // A second certificate for ui-01's key: getcrt opens the key (new data key) to check it.
      const again = await ca.sign(join(reqDir, `${fq('ui-01')}.req`), { days: 400 });
      const g = await run(tv, `getcrt ${again}`);
      assert.equal(g.status, 0, g.text);
      assert.match(g.text, /^stored the certificate for ui-01\.example\.org \(not after .*\); the previous pair is kept as history$/);
      const s1 = await run(tv, 'showcrt ui-01');
      assert.equal(s1.status, 0, s1.text);
      assert.equal(s1.lines.filter((l) => /^current \| /.test(l) && l.endsWith('| alice')).length, 1, s1.text);
      assert.equal(s1.lines.filter((l) => /^history \| /.test(l) && l.endsWith('| alice')).length, 1, 'the first certificate is history');

      // ce-02's pending key (made before rekey) takes its proper certificate now.
      const ce02 = await ca.sign(join(reqDir, `${fq('ce-02')}.req`));
      const g2 = await run(tv, `getcrt ${ce02}`);
      assert.equal(g2.status, 0, g2.text);

      // Renewal: a new key for ui-02; the current pair stays until the new certificate arrives, then becomes history.
      mkdirSync(join(work, 'renew'));
      const n = await run(tv, `crtreq ui-02 --type ec-p256 --out ${join(work, 'renew')}`);
      assert.equal(n.status, 0, n.text);
      const [stillCurrent] = await tv.session.store.currentCertificates(fq('ui-02'));
      assert.equal(stillCurrent!.fingerprintSha256, await ca.fingerprint(issued.get('ui-02')!), 'the old certificate stays current meanwhile');
      const l = await run(tv, 'lcrt ui-02');
      assert.match(l.text, /^ui-02 \| .* \| yes \| request created \d{4}-\d\d-\d\d \| never$/m);
      const renewed = await ca.sign(join(work, 'renew', `${fq('ui-02')}.req`));
      const g3 = await run(tv, `getcrt ${renewed}`);
      assert.equal(g3.status, 0, g3.text);
      const host = (await tv.session.store.getHost(fq('ui-02')))!;
      const ks = await tv.session.store.listKeys(host.id);
      assert.deepEqual(ks.map((k) => [k.keyType, k.state]), [['ec-p256', 'current'], ['rsa-4096', 'history']], 'the old key is kept as history');
      const cs = await tv.session.store.listCertificates(host.id);
      assert.deepEqual(cs.map((c) => c.state), ['current', 'history'], 'the old certificate is kept as history');

      await assertNoPlaintextKeys();
    });

    test('getcrt stores the issuing chain delivered with a certificate (each link verified, issuer first, no root beside an intermediate); showcrt shows it; a chain certificate that does not issue it is reported and not stored', async () => {
      const store = tv.session.store;
      const inter = await ca.intermediate();
      const req = (h: string) => join(work, 'wn', `${fq(h)}.req`);
      const pem = (f: string) => readFileSync(f, 'utf8');
      const blocks = (chain: string | null) => (chain?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? []).map((b) => new X509Certificate(b).fingerprint256);
      const fp = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;
      const INTER = 'CN=Passtore Fixture Intermediate CA,O=Test,DC=example,DC=org';
      const ROOT = 'CN=Passtore Fixture CA,O=Test,DC=example,DC=org';
      const current = async (h: string) => (await store.currentCertificates(fq(h)))[0]!;

      // wn-01: a PEM bundle in no useful order: the root, the certificate, the intermediate.
      const c1 = await ca.signByIntermediate(req('wn-01'));
      const bundle = join(work, 'wn-01-bundle.pem');
      writeFileSync(bundle, pem(ca.caCert) + pem(c1) + pem(inter.cert));
      const g1 = await run(tv, `getcrt ${bundle}`);
      assert.equal(g1.status, 0, g1.text);
      assert.deepEqual(g1.lines.slice(1), [`${fq('wn-01')}: stored with its issuing chain: ${INTER}`], g1.text);
      const r1 = await current('wn-01');
      assert.equal(r1.fingerprintSha256, await ca.fingerprint(c1));
      assert.deepEqual(blocks(r1.chainPem), [fp(inter.cert)], 'the intermediate only: the root is left out');
      assert.ok(!r1.pem.includes(r1.chainPem!.trim()), 'the certificate column holds the certificate alone');
      const leafFile = join(work, 'wn-01-leaf.pem');
      const chainFile = join(work, 'wn-01-chain.pem');
      writeFileSync(leafFile, r1.pem);
      writeFileSync(chainFile, r1.chainPem!);
      const verified = await opensslOk(['verify', '-CAfile', ca.caCert, '-untrusted', chainFile, leafFile]);
      assert.ok(verified.ok, `openssl verifies the stored certificate through the stored chain: ${verified.output}`);
      const s1 = await run(tv, 'showcrt wn-01');
      assert.ok(s1.lines.includes(`chain:       ${INTER}`), s1.text);

      // wn-02: a PKCS#7 bundle (DER) of the certificate and the intermediate.
      const c2 = await ca.signByIntermediate(req('wn-02'));
      const p7 = join(work, 'wn-02.p7b');
      await openssl(['crl2pkcs7', '-nocrl', '-certfile', c2, '-certfile', inter.cert, '-outform', 'DER', '-out', p7]);
      const g2 = await run(tv, `getcrt ${p7}`);
      assert.equal(g2.status, 0, g2.text);
      assert.deepEqual(blocks((await current('wn-02')).chainPem), [fp(inter.cert)], g2.text);

      // wn-03: issued by the root itself, delivered with it: the root is all the CA gave, so it is the chain.
      const c3 = await ca.sign(req('wn-03'));
      const withRoot = join(work, 'wn-03-bundle.pem');
      writeFileSync(withRoot, pem(c3) + pem(ca.caCert));
      const g3 = await run(tv, `getcrt ${withRoot}`);
      assert.equal(g3.status, 0, g3.text);
      assert.deepEqual(g3.lines.slice(1), [`${fq('wn-03')}: stored with its issuing chain: ${ROOT}`], g3.text);
      assert.deepEqual(blocks((await current('wn-03')).chainPem), [fp(ca.caCert)]);

      // wn-04: delivered with another CA's intermediate of the same name (another key): it issues
      // nothing here, so it is reported and not stored; the certificate is stored without a chain.
      const other = await FixtureCa.create();
      try {
        const c4 = await ca.signByIntermediate(req('wn-04'));
        const wrong = join(work, 'wn-04-bundle.pem');
        writeFileSync(wrong, pem(c4) + pem((await other.intermediate()).cert));
        const g4 = await run(tv, `getcrt ${wrong}`);
        assert.equal(g4.status, 0, g4.text);
        assert.match(g4.lines[0]!, new RegExp(`^stored the certificate for ${fq('wn-04').replace(/\./g, '\\.')} `));
        assert.deepEqual(g4.lines.slice(1), [`passed over 1 chain certificate that issues none of the certificates stored: ${INTER}`], g4.text);
        const r4 = await current('wn-04');
        assert.equal(r4.fingerprintSha256, await ca.fingerprint(c4));
        assert.equal(r4.chainPem, null);
        const s4 = await run(tv, 'showcrt wn-04');
        assert.ok(s4.lines.includes('chain:       none stored'), s4.text);
      } finally {
        other.remove();
      }
    });
  });
}
