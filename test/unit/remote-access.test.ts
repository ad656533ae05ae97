/**
 * The pure parts of remote access: the deploy key's OpenSSH encoding (read by ssh2 and by
 * ssh-keygen), its sealing in the vault (bound to its fingerprint, re-encrypted by
 * rekey), deploy profiles parsed from real files (the man page's example, and each kind
 * of bad line named by file, line and key), file contents per kind, and the read-back
 * check of a profile deploy, which treats the host's output as untrusted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { loadConfig } from '../../src/config.js';
import { checkFilesReadBack } from '../../src/remote/profile-deploy.js';
import { checkChain, contentFor, pathFor, profilesOf } from '../../src/remote/profiles.js';
import { blobOf, generateDeployKey, openSshPrivateKey } from '../../src/ssh/deploy-key.js';
import { openStore } from '../../src/storage/open.js';
import { Secret } from '../../src/secret.js';
import { Vault } from '../../src/vault/vault.js';

const run = promisify(execFile);
let dir: string;
let n = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'passtore-access-unit-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const conf = (...lines: string[]): string => {
  const path = join(dir, `p${++n}.conf`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
};

describe('the deploy key', () => {
  test('its OpenSSH form is read by ssh2 and by ssh-keygen, and matches the public line', async () => {
    const k = generateDeployKey('passtore-deploy-test');
    assert.match(k.publicKey, /^ssh-ed25519 [A-Za-z0-9+/]+=* passtore-deploy-test$/);
    const pem = openSshPrivateKey(k.pkcs8);
    const parsed = ssh2.utils.parseKey(pem);
    assert.ok(!(parsed instanceof Error), String(parsed));
    const one = Array.isArray(parsed) ? parsed[0]! : parsed;
    assert.equal(one.type, 'ssh-ed25519');
    assert.equal(one.getPublicSSH().toString('base64'), blobOf(k.publicKey));
    // It signs with the key of the PKCS#8 it came from.
    const data = Buffer.from('passtore');
    const sig = one.sign(data);
    assert.ok(createPublicKey(createPrivateKey({ key: k.pkcs8, format: 'der', type: 'pkcs8' })).type === 'public');
    assert.ok(one.verify(data, sig as Buffer));
    const file = join(dir, 'id');
    writeFileSync(file, pem, { mode: 0o600 });
    const { stdout } = await run('ssh-keygen', ['-y', '-f', file]);
    assert.equal(stdout.trim().split(' ').slice(0, 2).join(' '), k.publicKey.split(' ').slice(0, 2).join(' '));
    const fp = `SHA256:${createHash('sha256').update(Buffer.from(blobOf(k.publicKey), 'base64')).digest('base64').replace(/=+$/, '')}`;
    assert.equal(k.fingerprint, fp);
  });

  test('sealed in the vault bound to its fingerprint, and re-encrypted by rekey', async () => {
    process.env.PASSTORE_SCRYPT_LOG_N ??= '14';
    process.env.PASSTORE_TEST_SWITCHES ??= 'for-tests-only';
    const store = await openStore(`sqlite:${join(dir, 'vault.db')}`);
    try {
      const vault = await Vault.create(store, 'alice', Secret.fromString('a passphrase of some length'));
      const k = generateDeployKey('t');
      const id = await vault.transaction((tx) => tx.insertSshKey({ publicKey: k.publicKey, fingerprint: k.fingerprint, state: 'current', keyCiphertext: vault.sealSshKey(k.fingerprint, k.pkcs8), createdAt: 'now', createdBy: 'alice' }));
      const [row] = await store.listSshKeys();
      assert.equal(row!.id, id);
      assert.ok(!row!.keyCiphertext.bytes.includes(k.pkcs8.subarray(16, 48)), 'only ciphertext is stored');
      assert.deepEqual(vault.openSshKey(row!), k.pkcs8);
      // Moved to another fingerprint, it fails to open.
      assert.throws(() => vault.openSshKey({ ...row!, fingerprint: 'SHA256:other' }), /integrity error: the stored deploy key SHA256:other/);
      assert.ok((await vault.rekey()) >= 1);
      const [after] = await store.listSshKeys();
      assert.ok(!after!.keyCiphertext.bytes.equals(row!.keyCiphertext.bytes), 'rekey re-encrypted it');
      assert.deepEqual(vault.openSshKey(after!), k.pkcs8);
    } finally {
      await store.close();
    }
  });

  test('a key that is not Ed25519 is refused', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'der', type: 'pkcs8' });
    assert.throws(() => openSshPrivateKey(rsa), /not an Ed25519 key/);
  });
});

describe('deploy profiles', () => {
  test('the example of passtore.conf(5) loads', () => {
    const page = readFileSync(new URL('../../../man/passtore.conf.5', import.meta.url), 'utf8');
    const block = /\.SH "DEPLOY PROFILES"[\s\S]*?\.EX\n([\s\S]*?)\.EE/.exec(page)![1]!.replace(/\\-/g, '-');
    const c = loadConfig(conf(block));
    const web = c.profiles!.web!;
    assert.deepEqual(web.files.map((f) => [f.kind, f.mode.toString(8), `${f.owner}:${f.group}`]), [['cert', '644', 'root:root'], ['key', '400', 'root:root'], ['fullchain', '644', 'root:root']]);
    assert.deepEqual(web.reload, ['systemctl', 'reload', 'httpd']);
    assert.equal(web.verifyTlsPort, 443);
    assert.equal(web.onFailure, 'rollback');
  });

  test('each bad line is named by file, line and key', () => {
    const cases: Array<[string[], RegExp]> = [
      [['[profile web]', 'cert = /etc/a.crt 0644'], /:2: \[profile web\] cert: expected PATH MODE OWNER:GROUP/],
      [['[profile web]', 'cert = /etc/../a.crt 0644 root:root'], /:2: \[profile web\] cert: '\/etc\/\.\.\/a\.crt' is not an absolute file path/],
      [['[profile web]', 'cert = /etc/a.crt 0666 root:root'], /:2: \[profile web\] cert: mode 0666 lets others than the owner write it/],
      [['[profile web]', 'bundle = /etc/a.pem 0644 root:root'], /:2: \[profile web\] bundle: a file holding the private key must not be readable by others/],
      [['[profile web]', 'cert = /etc/{domain}.crt 0644 root:root'], /only \{fqdn\} and \{host\} are replaced/],
      [['[profile web]', 'cert = /etc/a.crt 0644 Root:x y'], /expected PATH MODE OWNER:GROUP/],
      [['[profile web]', 'cert = /etc/a.crt 0644 root'], /'root' is not OWNER:GROUP/],
      [['[profile web]', 'cert = /etc/a.crt 0644 root:root', 'verify = https 443'], /:3: \[profile web\] verify: expected tls PORT/],
      [['[profile web]', 'cert = /etc/a.crt 0644 root:root', 'on_failure = retry'], /:3: \[profile web\] on_failure: expected rollback or report/],
      [['[profile web]', 'reload = x'], /\[profile web\]: a profile needs at least one file/],
      [['[profile grid]', 'cert = /etc/a.crt 0644 root:root'], /\[profile grid\]: grid is the built-in profile/],
      [['[profile Web]', 'cert = /etc/a.crt 0644 root:root'], /\[profile Web\]: a profile name is lowercase/],
    ];
    for (const [lines, want] of cases) assert.throws(() => loadConfig(conf(...lines)), want, lines.join(' / '));
  });

  test('profiles of a host: grid by default, an unknown one refused', () => {
    assert.deepEqual(profilesOf(null, undefined, '/etc/grid-security')[0]!.files.map((f) => f.path), ['/etc/grid-security/hostcert.pem', '/etc/grid-security/hostkey.pem']);
    assert.throws(() => profilesOf(['web'], {}, '/x'), /deploy profile web is not in the configuration/);
    assert.equal(pathFor('/etc/{host}/{fqdn}.crt', 'ui-01.example.org'), '/etc/ui-01/ui-01.example.org.crt');
  });

  test('contents per kind: chain, fullchain and bundle', () => {
    const a = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const b = '-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n';
    const key = Buffer.from('-----BEGIN PRIVATE KEY-----\nKKKK\n-----END PRIVATE KEY-----\n');
    const withChain = { pem: a, chainPem: b };
    const alone = { pem: a, chainPem: null };
    assert.equal(contentFor('cert', withChain, key, 'h').toString(), a);
    assert.equal(contentFor('fullchain', withChain, key, 'h').toString(), a + b, 'the certificate, then its chain');
    assert.equal(contentFor('chain', withChain, key, 'h').toString(), b);
    assert.equal(contentFor('chain', { pem: a, chainPem: b.trimEnd() }, key, 'h').toString(), b, 'ends with a newline');
    assert.equal(contentFor('bundle', withChain, key, 'h').toString(), key.toString() + a);
    assert.equal(contentFor('fullchain', alone, key, 'h').toString(), a);
    assert.throws(() => contentFor('chain', alone, key, 'h.example.org'), /h\.example\.org: no issuing chain is stored with the certificate, which a chain file needs/);
    const web = profilesOf(['web'], { web: { name: 'web', files: [{ kind: 'chain', path: '/c', mode: 0o644, owner: 'root', group: 'root' }], onFailure: 'report' } as never }, '/x');
    assert.throws(() => checkChain(web, alone, 'h.example.org'), /h\.example\.org: no issuing chain is stored/);
    checkChain(web, withChain, 'h.example.org');
    checkChain(profilesOf(null, undefined, '/x'), alone, 'h.example.org');
  });
});

describe('the read-back check of a profile deploy (host output is untrusted)', () => {
  const files = [
    { path: '/etc/a.crt', sha256: 'a'.repeat(64), mode: '644', owner: 'root:root' },
    { path: '/etc/b.key', sha256: 'b'.repeat(64), mode: '440', owner: 'root:web' },
  ];
  const good = [`${'a'.repeat(64)}  /etc/a.crt`, '/etc/a.crt 644 root:root', `${'b'.repeat(64)}  /etc/b.key`, '/etc/b.key 440 root:web'];
  test('accepts exactly the expected lines', () => {
    checkFilesReadBack('h', good.join('\n'), files);
  });
  test('refuses a wrong hash, mode, owner, a missing or a repeated line', () => {
    const bad: string[][] = [
      good.map((l) => l.replace('a'.repeat(64), 'c'.repeat(64))),
      good.map((l) => l.replace('440 root:web', '444 root:web')),
      good.map((l) => l.replace('root:web', 'web:web')),
      good.slice(1),
      [...good, `${'a'.repeat(64)}  /etc/a.crt`],
      [...good, '/etc/b.key 400 root:web'],
    ];
    for (const lines of bad) assert.throws(() => checkFilesReadBack('h', lines.join('\n'), files), /h: \/etc\/[ab]\.(crt|key) does not/);
  });
});
