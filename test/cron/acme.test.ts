/**
 * The `acme` CA fetcher end to end against a real ACME server: Debian's pebble with its
 * example config that requires external account binding (EAB), on 127.0.0.1 with a TLS
 * certificate made here (given to passtore as acme_ca_bundle), every challenge valid
 * (PEBBLE_VA_ALWAYS_VALID). A real vault on SQLite; the built passtore-cron as a child.
 *
 * Shown here:
 * - one `passtore-cron run`, with only [ca] acme_* configured, makes the new key and
 *   request for the certificate within crt_ttl days of expiry, registers the account
 *   with the EAB kid and key of pebble's example config, orders with the stored request,
 *   and stores the issued certificate: its SPKI is the new key's (and the request's, read
 *   by openssl), it chains to pebble's root of this start, the chain the server sent
 *   (pebble's intermediate) is stored with it, and no mail is queued or sent;
 * - HS256 (kid-1) and HS512 (kid-2) bindings are both accepted (two vaults, two runs);
 * - what is asserted about the deploy: the host has no pinned SSH host key, so the deploy
 *   fails before any connection: the one FAILED line of a good run, exit 1;
 * - a wrong EAB key is refused by the CA: a one-line `FAILED: fetch acme: ...
 *   account registration refused: ...`, exit 1, no certificate stored, the request open.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import * as acme from 'acme-client';
import { defaultConfig, type Config } from '../../src/config.js';
import { restoreFromBackup } from '../../src/restore.js';
import { Session } from '../../src/session.js';
import { PASSPHRASE, ScriptedIo } from '../support/scripted.js';
import { join } from 'node:path';
import { FixtureCa, opensslOk } from '../x509/fixture-ca.js';
import { expiringVault, fq, runCron, shown, spkiSha256OfCert, spkiSha256OfRequest, type ExpiringVault } from './fetch-vault.js';
import { pebbleSkip, TestPebble } from './pebble.js';

const skip = pebbleSkip();

/** A line of a PEM key's body: what a plaintext copy of it would hold. */
const canaryOf = (pem: Buffer) => Buffer.from(pem.toString('utf8').split('\n')[1]!);

/** Every file below `dirs` that holds `needle`. */
function filesHolding(dirs: string[], needle: Buffer): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && readFileSync(p).includes(needle)) out.push(p);
    }
  };
  for (const d of dirs) if (existsSync(d)) walk(d);
  return out;
}

describe('passtore-cron with the acme fetcher (pebble, external account binding required)', { skip }, () => {
  let ca: FixtureCa;
  let pebble: TestPebble;
  const vaults: ExpiringVault[] = [];
  const fqdn = fq('ui-01');

  before(async () => {
    ca = await FixtureCa.create();
    pebble = await TestPebble.start();
  });

  after(async () => {
    for (const v of vaults) await v.close();
    await pebble?.stop();
    ca?.remove();
  });

  /** The URL of the account pebble holds for `accountKey` (onlyReturnExisting: none is made). */
  async function existingAccount(accountKey: Buffer): Promise<string> {
    acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: readFileSync(pebble.tlsCert) });
    const client = new acme.Client({ directoryUrl: pebble.directory, accountKey });
    await client.createAccount({ onlyReturnExisting: true });
    return client.getAccountUrl();
  }

  /** A vault whose ui-01 certificate expires in 10 days, configured for pebble only. */
  async function acmeVault(alg: string, kid: string, eabKey: string, options: { dataDir?: boolean; caBundle?: boolean; keyType?: 'ec-p256' | 'rsa-2048' } = {}): Promise<ExpiringVault> {
    const v = await expiringVault(ca, ['ui-01'], 10, options.keyType ?? 'ec-p256');
    vaults.push(v);
    // passtore's data directory, as an earlier run (or a vault file there) leaves it; the
    // acme fetcher also creates it itself (the test at the end).
    if (options.dataDir !== false) mkdirSync(join(v.dataHome, 'passtore'), { mode: 0o700 });
    const hmacFile = join(v.work, 'eab.key');
    writeFileSync(hmacFile, `${eabKey}\n`, { mode: 0o600 });
    v.writeConfig([
      '[ca]',
      `acme_directory = ${pebble.directory}`,
      `acme_eab_kid = ${kid}`,
      `acme_eab_hmac_file = ${hmacFile}`,
      `acme_eab_alg = ${alg}`,
      ...(options.caBundle === false ? [] : [`acme_ca_bundle = ${pebble.tlsCert}`]),
    ]);
    return v;
  }

  for (const [alg, kid, keyType] of [['HS256', 'kid-1', 'ec-p256'], ['HS512', 'kid-2', 'rsa-2048']] as const) {
    test(`one run renews (${keyType}), orders with an ${alg} binding (${kid}) and stores the issued certificate, with no mail step`, async () => {
      assert.ok(pebble.eabKeys[kid], `pebble's example config has ${kid}`);
      const v = await acmeVault(alg, kid, pebble.eabKeys[kid]!, { keyType });
      const store = v.tv.session.store;
      const old = v.old.get(fqdn)!;

      const r = await v.cron('run');
      // The renewal keeps the key type of the certificate it renews.
      assert.ok(r.lines.some((l) => l.startsWith(`renew ${fqdn}: new ${keyType} key and request`)), shown(r));
      assert.ok(r.lines.includes(`stored the certificate for ${fqdn} from ACME 127.0.0.1:${pebble.port} order for ${fqdn} (not after ${(await v.current(fqdn)).notAfter.slice(0, 10)})`), shown(r));
      // What is asserted about the deploy: the only failure, before any connection.
      assert.equal(r.failures.length, 1, shown(r));
      assert.match(r.failures[0]!, new RegExp(`^FAILED: deploy ${fqdn.replace(/\./g, '\\.')}: .*no pinned SSH host key`), shown(r));
      assert.equal(r.status, 1, shown(r));
      assert.equal(r.lines.length, 3, `renew, stored, the deploy failure; nothing else:\n${shown(r)}`);

      // The new certificate is current and belongs to the new key made by this run.
      const cur = await v.current(fqdn);
      assert.notEqual(cur.serial, old.serial);
      assert.notEqual(cur.fingerprintSha256, old.fingerprint);
      assert.match(cur.issuer, /Pebble Intermediate CA/);
      const host = (await store.getHost(fqdn))!;
      const requests = await store.listRequests(host.id);
      const renewal = requests.find((q) => q.keyId === cur.keyId);
      assert.ok(renewal, 'the certificate is for the key of a request in the vault');
      assert.equal(renewal.state, 'fulfilled');
      const key = (await store.listKeys(host.id)).find((k) => k.id === cur.keyId)!;
      assert.equal(key.keyType, keyType);
      const certSpki = spkiSha256OfCert(cur.pem);
      assert.equal(certSpki, key.spkiSha256, "the certificate's SPKI is the new key's");
      assert.equal(certSpki, await spkiSha256OfRequest(renewal.pem, join(v.work, 'renewal.req')), "and the request's (openssl)");
      assert.notEqual(certSpki, spkiSha256OfCert((await store.getCertificateByFingerprint(old.fingerprint))!.pem), 'not the old key');
      assert.ok(new X509Certificate(cur.pem).checkHost(fqdn), 'it names the host');
      assert.equal((await store.openRequests('*')).length, 0, 'no request left open');

      // It chains to the root pebble made at this start.
      const root = join(v.work, 'pebble-root.pem');
      const intermediate = join(v.work, 'pebble-intermediate.pem');
      const leaf = join(v.work, 'issued.pem');
      writeFileSync(root, await pebble.managementPem('/roots/0'));
      writeFileSync(intermediate, await pebble.managementPem('/intermediates/0'));
      writeFileSync(leaf, cur.pem);
      const verified = await opensslOk(['verify', '-CAfile', root, '-untrusted', intermediate, leaf]);
      assert.ok(verified.ok, verified.output);
      // The chain the ACME server sent is stored with it: pebble's intermediate of this start.
      assert.equal(cur.chainPem, new X509Certificate(readFileSync(intermediate)).toString(), 'the issuing chain is stored: the intermediate');
      const storedChain = join(v.work, 'stored-chain.pem');
      writeFileSync(storedChain, cur.chainPem!);
      const throughStored = await opensslOk(['verify', '-CAfile', root, '-untrusted', storedChain, leaf]);
      assert.ok(throughStored.ok, throughStored.output);

      // No mail step: nothing queued (no admin_email, no [smtp]), nothing said about mail.
      assert.equal(await store.countQueuedMail(), 0);
      assert.ok(!/mail/i.test(r.stdout), shown(r));
      // The ACME account key is kept in the vault, encrypted, and in no file.
      assert.ok(!existsSync(join(v.dataHome, 'passtore', 'acme-account-key.pem')));
      const row = await store.getAccountKey(`acme ${pebble.directory}`);
      assert.ok(row, 'the account key is in the vault');
      const pem = v.tv.session.vault.openAccountKey(row);
      assert.deepEqual(filesHolding([v.work, v.tv.dir], canaryOf(pem)), [], 'no file holds the account key in plaintext');
    });
  }

  test('a wrong EAB key is refused with a one-line error, exit 1, and nothing is stored', async () => {
    const v = await acmeVault('HS256', 'kid-1', randomBytes(48).toString('base64url'));
    const before = await v.certRows();
    const r = await v.cron('run');
    assert.equal(r.status, 1, shown(r));
    assert.equal(r.failures.length, 1, shown(r));
    assert.match(r.failures[0]!, /^FAILED: fetch acme: acme fetcher: account registration refused: \S.*$/, shown(r));
    assert.equal(r.lines.length, 2, `the renew line and the one failure line, nothing else:\n${shown(r)}`);
    assert.ok(r.lines[0]!.startsWith(`renew ${fqdn}: new ec-p256 key and request`), shown(r));
    assert.equal(r.stderr, '', shown(r));
    assert.deepEqual(await v.certRows(), before, 'no certificate stored');
    assert.equal((await v.current(fqdn)).serial, v.old.get(fqdn)!.serial);
    const open = await v.tv.session.store.openRequests('*');
    assert.equal(open.length, 1, 'the renewal request stays open for the next run');
    assert.equal(await v.tv.session.store.countQueuedMail(), 0);
  });

  // Regressions of bugs found and fixed: a fresh data directory, an untrusted server.

  test('with a fresh data directory (the vault elsewhere), the account key is made and the order goes through', async () => {
    const v = await acmeVault('HS256', 'kid-1', pebble.eabKeys['kid-1']!, { dataDir: false });
    const r = await v.cron('run');
    assert.ok(r.lines.some((l) => l.startsWith(`stored the certificate for ${fqdn} from ACME `)), shown(r));
    assert.deepEqual(r.failures.map((f) => f.startsWith(`FAILED: deploy ${fqdn}: `)), [true], shown(r));
    assert.ok(!existsSync(join(v.dataHome, 'passtore', 'acme-account-key.pem')));
    assert.ok(await v.tv.session.store.getAccountKey(`acme ${pebble.directory}`), 'the account key is in the vault');
  });

  test('an account key file is taken into the vault and removed; backed up and restored elsewhere, the next fetch uses the same account', async () => {
    const v = await acmeVault('HS256', 'kid-1', pebble.eabKeys['kid-1']!);
    // An account key file as earlier versions left it, of an account pebble knows.
    const file = join(v.dataHome, 'passtore', 'acme-account-key.pem');
    const pem = Buffer.from(await acme.crypto.createPrivateEcdsaKey('P-256'));
    writeFileSync(file, pem, { mode: 0o600 });
    const first = await v.cron('run');
    assert.ok(first.lines.some((l) => l.startsWith(`stored the certificate for ${fqdn} from ACME `)), shown(first));
    assert.ok(!existsSync(file), 'the file is removed once the key is in the vault');
    const name = `acme ${pebble.directory}`;
    const stored = v.tv.session.vault.openAccountKey((await v.tv.session.store.getAccountKey(name))!);
    assert.ok(stored.equals(pem), 'the vault holds the key of the file');
    const accountUrl = await existingAccount(pem);

    // Backup, then restore on "a new machine": another database, another data directory.
    const media = join(v.work, 'media');
    mkdirSync(media);
    assert.equal(await v.tv.run(`backup ${media}`), 0, v.tv.io.text());
    assert.deepEqual(filesHolding([v.work, v.tv.dir], canaryOf(pem)), [], 'no file (database, backup, data directory) holds the account key in plaintext');
    const newDb = `sqlite:${join(v.work, 'restored', 'vault.db')}`;
    const config: Config = { ...defaultConfig(), domain: 'example.org', db: newDb, operator: 'alice' };
    const io = new ScriptedIo();
    io.answers.push(PASSPHRASE);
    await restoreFromBackup(config, media, 'alice', io, io, { stateDir: join(v.work, 'restored') });
    const newData = join(v.work, 'new-data');
    mkdirSync(join(newData, 'passtore'), { recursive: true, mode: 0o700 });
    const newConfig = join(v.work, 'restored.conf');
    writeFileSync(newConfig, readFileSync(v.configFile, 'utf8').replace(/^db = .*$/m, `db = ${newDb}`), { mode: 0o600 });
    // A new request on the restored vault, for the next fetch to order.
    const session = await Session.open({ config, prompt: io, out: io, terminal: false, operator: 'alice', stateDir: join(v.work, 'restored') });
    try {
      io.answers.push(PASSPHRASE);
      await session.unlock(1);
      mkdirSync(join(v.work, 'req2'));
      assert.equal(await session.execute(`crtreq ui-01 --replace --out ${join(v.work, 'req2')}`), 0, io.text());
      const r = await runCron(newConfig, 'fetch', newData);
      assert.ok(r.lines.some((l) => l.startsWith(`stored the certificate for ${fqdn} from ACME `)), shown(r));
      assert.ok(!existsSync(join(newData, 'passtore', 'acme-account-key.pem')), 'no new account key file');
      const restored = session.vault.openAccountKey((await session.store.getAccountKey(name))!);
      assert.ok(restored.equals(pem), 'the restored vault orders with the same account key');
      assert.equal(await existingAccount(restored), accountUrl, 'the same account at the CA');
    } finally {
      await session.close();
    }
  });

  test('an ACME server whose TLS certificate is not trusted is named as such, at once', async () => {
    const v = await acmeVault('HS256', 'kid-1', pebble.eabKeys['kid-1']!, { caBundle: false });
    const started = Date.now();
    const r = await runCron(v.configFile, 'run', v.dataHome, 20_000);
    assert.ok(Date.now() - started < 20_000);
    assert.equal(r.status, 1, shown(r));
    assert.equal(r.failures.length, 1, shown(r));
    assert.match(r.failures[0]!, /^FAILED: fetch acme: .*(certificate|self[- ]signed|trust)/i, shown(r));
    assert.deepEqual(await v.certRows(), [[fqdn, v.old.get(fqdn)!.fingerprint, 'current']]);
  });
});
