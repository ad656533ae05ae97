/**
 * Deploy profiles against a real sshd host running a real TLS service (openssl s_server,
 * started by the profile's reload command from the deployed files). Shown here:
 *
 * - a profile with three file kinds (cert, key, fullchain), a non-root owner and group
 *   (resolved on the host), a reload and `verify = tls PORT`: the files land with the
 *   right contents, modes and owners, the reload runs, the service presents the new
 *   certificate (checked by passtore through the guard, and with openssl s_client from
 *   another namespace);
 * - the same pair deployed again adds no backup of identical files;
 * - a reload that fails, with `on_failure = rollback`: one clear error line, the previous
 *   files are back in place and the service presents the previous certificate; the next
 *   putcrt deploys the new pair;
 * - an old key file left 0644: its dated backup is the old mode narrowed to the planned
 *   one (0440, never readable by others) with its owner and times; a rollback puts such a
 *   key back with exactly its old mode 0644, owner and times, not the backup's mode;
 * - `host profile` refuses a profile the configuration does not have, and a bad profile
 *   line is a configuration error naming file, line and key;
 * - a certificate stored with its issuing chain (getcrt of the certificate, an
 *   intermediate and the root): the `chain` file gets the intermediate, `fullchain` the
 *   certificate then the intermediate, and the host's openssl verifies the deployed files
 *   to the root; a certificate stored without a chain makes a `chain` file one error line
 *   naming the host, before any connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeHome, type Home, type PtySession } from '../support/pty.js';
import { SERVICE_PORT, siteSkip, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { loadConfig } from '../../src/config.js';
import { assertGuardClosed, certFingerprint, certify, closeShell, cmd, enrol, onHost, oneError, openVault, runUntilCrash, sha256, spkiOfFile, spkiOnHost, startSuite, stopSuite, trust } from './helpers.js';

const run = promisify(execFile);
const PORT = SERVICE_PORT;
const DIR = '/etc/pki/web';
/** Where profile `chained` (cert, chain, fullchain, key) puts host2's files. */
const CHAINED = '/etc/pki/chained';

describe('deploy profiles: files, owners, reload, TLS proof, rollback', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let ca: FixtureCa | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let reqDir: string | undefined;
  let h1: TestHost;
  let h2: TestHost;
  let reload: string;
  let firstCert: string;

  /** The fingerprint (hex) of the certificate the service on host1 presents, seen from host2's namespace. */
  const presented = async (): Promise<string> => {
    const { stdout } = await run('sh', ['-c', 'ip netns exec "$1" openssl s_client -connect "$2" -servername "$3" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256', 'sh', h2.ns, `${h1.address}:${PORT}`, h1.fqdn]);
    return stdout.split('=')[1]!.trim().replace(/:/g, '').toLowerCase();
  };
  /** name → { sha256, mode, owner:group } of the files in DIR and DIR/private. */
  const files = async (): Promise<Map<string, { sha256: string; mode: string; owner: string }>> => {
    const out = await onHost(site!, h1, ['sh', '-c', 'cd "$1" && find . -type f ! -name "*.pid" | sort | while read -r f; do printf "%s %s %s\\n" "$(sha256sum < "$f" | cut -d" " -f1)" "$(stat -c "%a %U:%G" "$f")" "$f"; done', 'sh', DIR]);
    const map = new Map<string, { sha256: string; mode: string; owner: string }>();
    for (const l of out.split('\n').filter(Boolean)) {
      const [hash, mode, owner, name] = l.split(' ') as [string, string, string, string];
      map.set(name.replace(/^\.\//, ''), { sha256: hash, mode, owner });
    }
    return map;
  };

  before(async () => {
    ({ site, ca, home, reqDir, sh } = await startSuite(2, {
      home: (s) => {
        // The reload: restarts s_server with the deployed files; refuses once when asked to.
        reload = join(s.dir, 'tls-reload.sh');
        writeFileSync(
          reload,
          [
            '#!/bin/sh',
            `d=${DIR}`,
            'if [ -e "$d/fail-once" ]; then rm -f "$d/fail-once"; echo "tls-reload: refused on purpose" >&2; exit 1; fi',
            'if [ -f "$d/s_server.pid" ]; then kill "$(cat "$d/s_server.pid")" 2>/dev/null || true; fi',
            `while ss -Hltn 'sport = :${PORT}' | grep -q ${PORT}; do sleep 0.05; done`,
            `setsid openssl s_server -accept ${PORT} -cert "$d/$1-fullchain.pem" -key "$d/private/$1.key" -quiet -www </dev/null >/dev/null 2>&1 &`,
            'echo $! > "$d/s_server.pid"',
            `for i in $(seq 100); do ss -Hltn 'sport = :${PORT}' | grep -q ${PORT} && exit 0; sleep 0.05; done`,
            'echo "tls-reload: s_server did not start" >&2; exit 1',
            '',
          ].join('\n'),
          { mode: 0o755 },
        );
        return makeHome([
          `domain = ${s.domain}`,
          ...s.networkConfig(),
          '[profile web]',
          `cert = ${DIR}/{fqdn}.crt 0644 root:root`,
          `key = ${DIR}/private/{fqdn}.key 0440 root:webadm`,
          `fullchain = ${DIR}/{fqdn}-fullchain.pem 0644 webadm:webadm`,
          `reload = ${reload} {fqdn}`,
          `verify = tls ${PORT}`,
          'on_failure = rollback',
          '[profile chained]',
          `cert = ${CHAINED}/{fqdn}.crt 0644 root:root`,
          `chain = ${CHAINED}/{fqdn}-chain.pem 0644 root:root`,
          `fullchain = ${CHAINED}/{fqdn}-fullchain.pem 0644 root:root`,
          `key = ${CHAINED}/{fqdn}.key 0400 root:root`,
        ]);
      },
    }));
    [h1, h2] = site.hosts as [TestHost, TestHost];
    await onHost(site, h1, ['useradd', '-r', '-M', '-s', '/usr/sbin/nologin', 'webadm']);
  });

  after(async () => {
    await closeShell(sh);
    if (site && h1?.sshd) await onHost(site, h1, ['sh', '-c', `[ -f ${DIR}/s_server.pid ] && kill "$(cat ${DIR}/s_server.pid)" || true`]).catch(() => undefined);
    await stopSuite({ site, home, ca, reqDir });
  });

  test('a bad profile line is a configuration error naming file, line and key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'passtore-profile-conf-'));
    try {
      const file = join(dir, 'passtore.conf');
      writeFileSync(file, '[profile web]\ncert = /etc/x.crt 0644 root:root\nkey = /etc/x.key 0644 root:root\n');
      assert.throws(() => loadConfig(file), (e: Error) => e.message === `${file}:3: [profile web] key: a file holding the private key must not be readable by others (mode 0644)`);
      writeFileSync(file, '[profile web]\ncert = relative.crt 0644 root:root\n');
      assert.throws(() => loadConfig(file), /passtore\.conf:2: \[profile web\] cert: 'relative\.crt' is not an absolute file path/);
      writeFileSync(file, '[profile web]\ncert = /etc/x.crt 0644 root:root\nreboot = now\n');
      assert.throws(() => loadConfig(file), /passtore\.conf:3: \[profile web\] reboot: unknown key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('host profile assigns a configured profile, and refuses one that is not configured', async () => {
    firstCert = (await enrol(sh!, site!, h1, ca!, reqDir!)).cert;
    assert.match(await cmd(sh!, 'host profile host1 nosuch'), /error: host profile: no \[profile nosuch\] section/);
    assert.match(await cmd(sh!, 'host profile host1 web'), /host1\.site\.test is deployed by profile web/);
  });

  test('putcrt writes cert, key and fullchain with their modes and owners, reloads, and the service presents the new certificate', async () => {
    const out = await cmd(sh!, 'putcrt host1');
    assert.match(out, /host1\.site\.test: deployed 3 files of web, reloaded, port 8443 presents it/);
    await assertGuardClosed(site!, 'putcrt host1 (profile web)');
    const f = await files();
    const stored = readFileSync(firstCert, 'utf8');
    const leaf = `${/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stored)![0]}\n`;
    assert.deepEqual(f.get('host1.site.test.crt'), { sha256: sha256(leaf), mode: '644', owner: 'root:root' });
    assert.deepEqual(f.get('host1.site.test-fullchain.pem'), { sha256: sha256(leaf), mode: '644', owner: 'webadm:webadm' });
    assert.deepEqual({ ...f.get('private/host1.site.test.key'), sha256: '' }, { sha256: '', mode: '440', owner: 'root:webadm' });
    assert.equal(await spkiOnHost(site!, h1, `${DIR}/private/host1.site.test.key`, 'key'), await spkiOfFile(firstCert, 'cert'), 'the key matches the certificate');
    assert.equal(await presented(), await certFingerprint(firstCert), 's_client from host2 sees the deployed certificate');
  });

  test('the same pair again: no new backup of identical files', async () => {
    const before = [...(await files()).keys()].sort();
    assert.match(await cmd(sh!, 'putcrt host1'), /deployed 3 files of web \(3 unchanged\), reloaded, port 8443 presents it/);
    assert.deepEqual([...(await files()).keys()].sort(), before, 'no dated copy was added');
  });

  test('a failed reload with on_failure = rollback: one error line, the previous files back, the old certificate served; the next putcrt succeeds', async () => {
    const oldFiles = await files();
    const oldFingerprint = await presented();
    const { cert } = await certify(sh!, h1, ca!, reqDir!);
    await onHost(site!, h1, ['touch', `${DIR}/fail-once`]);
    const out = await cmd(sh!, 'putcrt host1');
    assert.match(out, /error: host1\.site\.test: the reload of profile web \(.*tls-reload\.sh host1\.site\.test\) failed: tls-reload: refused on purpose; the previous files were put back and reloaded/);
    await assertGuardClosed(site!, 'putcrt host1 (failed reload)');
    const now = await files();
    for (const name of ['host1.site.test.crt', 'private/host1.site.test.key', 'host1.site.test-fullchain.pem']) assert.deepEqual(now.get(name), oldFiles.get(name), `${name} is the previous one`);
    assert.equal(await presented(), oldFingerprint, 'the service presents the previous certificate');
    assert.match(await cmd(sh!, 'audit host1'), /rollback/);
    assert.match(await cmd(sh!, 'putcrt host1'), /deployed 3 files of web, reloaded, port 8443 presents it/);
    assert.equal(await presented(), await certFingerprint(cert));
  });

  test('an old key file left 0644: its dated backup is no wider than the planned 0440 (never readable by others), with its owner, times and content', async () => {
    const key = 'private/host1.site.test.key';
    await onHost(site!, h1, ['chmod', '0644', `${DIR}/${key}`]);
    const old = await files();
    assert.equal(old.get(key)!.mode, '644');
    const oldTime = await onHost(site!, h1, ['stat', '-c', '%Y', `${DIR}/${key}`]);
    await certify(sh!, h1, ca!, reqDir!);
    assert.match(await cmd(sh!, 'putcrt host1'), /deployed 3 files of web, reloaded, port 8443 presents it/);
    const now = await files();
    const added = [...now.keys()].filter((n) => !old.has(n));
    const backup = added.find((n) => n.startsWith(`${key}.`));
    assert.ok(backup, `a dated backup of the key was made (new files: ${added.join(', ')})`);
    const kept = now.get(backup)!;
    assert.equal(parseInt(kept.mode, 8) & ~0o440, 0, `the backup is at most the planned 0440 (it is ${kept.mode})`);
    assert.equal(parseInt(kept.mode, 8) & 0o007, 0, 'the backup is not readable by others');
    assert.deepEqual(kept, { sha256: old.get(key)!.sha256, mode: '440', owner: old.get(key)!.owner }, 'the old key, 0644 & 0440, its owner');
    assert.equal(await onHost(site!, h1, ['stat', '-c', '%Y', `${DIR}/${backup}`]), oldTime, 'its modification time kept');
    assert.equal(now.get(key)!.mode, '440', 'the live key is the planned 0440');
    const certBackup = added.find((n) => n.startsWith('host1.site.test.crt.'));
    assert.equal(certBackup && now.get(certBackup)!.mode, '644', 'the certificate\'s backup: 0644 & 0644');
  });

  test('a failed reload with on_failure = rollback puts an old 0644 key file back with exactly its mode, owner, times and content (not its backup\'s narrowed mode)', async () => {
    const key = 'private/host1.site.test.key';
    await onHost(site!, h1, ['chmod', '0644', `${DIR}/${key}`]);
    await onHost(site!, h1, ['chown', 'webadm:webadm', `${DIR}/${key}`]);
    const old = await files();
    assert.deepEqual({ ...old.get(key)!, sha256: '' }, { sha256: '', mode: '644', owner: 'webadm:webadm' });
    const oldTime = await onHost(site!, h1, ['stat', '-c', '%Y', `${DIR}/${key}`]);
    const oldFingerprint = await presented();
    const { cert } = await certify(sh!, h1, ca!, reqDir!);
    await onHost(site!, h1, ['touch', `${DIR}/fail-once`]);
    assert.match(await cmd(sh!, 'putcrt host1'), /error: host1\.site\.test: the reload of profile web .* failed: tls-reload: refused on purpose; the previous files were put back and reloaded/);
    await assertGuardClosed(site!, 'putcrt host1 (failed reload, old key 0644)');
    const now = await files();
    for (const name of ['host1.site.test.crt', key, 'host1.site.test-fullchain.pem']) assert.deepEqual(now.get(name), old.get(name), `${name} is back as it was`);
    assert.equal(await onHost(site!, h1, ['stat', '-c', '%Y', `${DIR}/${key}`]), oldTime, 'the key\'s modification time is back');
    const backup = [...now.keys()].find((n) => n.startsWith(`${key}.`) && !old.has(n));
    assert.deepEqual(backup && { ...now.get(backup)!, sha256: '' }, { sha256: '', mode: '440', owner: 'webadm:webadm' }, 'its backup stays 0644 & 0440');
    assert.ok(![...now.keys()].some((n) => n.endsWith('.passtore-new')), 'no new file left beside its place');
    assert.equal(await presented(), oldFingerprint, 'the service presents the previous certificate');
    assert.match(await cmd(sh!, 'putcrt host1'), /deployed 3 files of web, reloaded, port 8443 presents it/);
    assert.deepEqual({ ...(await files()).get(key)!, sha256: '' }, { sha256: '', mode: '440', owner: 'root:webadm' }, 'the next putcrt gives the key its planned mode and owner');
    assert.equal(await presented(), await certFingerprint(cert));
  });

  for (const step of ['deploy-write-cert', 'deploy-install', 'deploy-reload']) {
    test(`killed at ${step}: every file of the host is the old one or every file the new one; the next putcrt succeeds`, async () => {
      const { cert } = await certify(sh!, h1, ca!, reqDir!);
      const old = await files();
      await closeShell(sh);
      await runUntilCrash(site!, home!, step, 'putcrt host1');
      sh = undefined;
      const now = await files();
      const names = ['host1.site.test.crt', 'private/host1.site.test.key', 'host1.site.test-fullchain.pem'];
      const same = names.filter((n) => now.get(n)?.sha256 === old.get(n)?.sha256);
      assert.ok(same.length === 0 || same.length === names.length, `${step}: all old or all new (unchanged: ${same.join(', ')})`);
      if (same.length === 0) {
        const leaf = `${/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(readFileSync(cert, 'utf8'))![0]}\n`;
        assert.equal(now.get('host1.site.test.crt')!.sha256, sha256(leaf));
        assert.equal(await spkiOnHost(site!, h1, `${DIR}/private/host1.site.test.key`, 'key'), await spkiOfFile(cert, 'cert'));
      }
      assert.equal(step === 'deploy-write-cert' ? same.length : 0, step === 'deploy-write-cert' ? names.length : 0, 'killed before sending: the old files');
      assert.ok(![...now.keys()].some((n) => n.endsWith('.passtore-new')), 'no new file left beside its place');
      const opened = await openVault(site!, home!);
      sh = opened.sh;
      assert.match(opened.banner, /closed the network guard an earlier run left open/);
      assert.match(await cmd(sh, 'putcrt host1'), /deployed 3 files of web.*, reloaded, port 8443 presents it/);
      assert.equal(await presented(), await certFingerprint(cert));
    });
  }

  test('a certificate stored with its issuing chain: the chain file gets the chain, fullchain the certificate then the chain; a certificate stored without one: a chain file is one error line naming the host, nothing sent', async () => {
    assert.match(await cmd(sh!, `host add ${h2.name} --address ${h2.address}`), /added host host2\.site\.test/);
    assert.match(await cmd(sh!, `add ${h2.name}`, h2.rootPassword, h2.rootPassword), /stored root@host2\.site\.test:ssh/);
    await trust(sh!, site!, h2);
    // From an intermediate CA: the delivery holds the certificate, the intermediate and the root.
    assert.match(await cmd(sh!, `crtreq host2 --out ${reqDir}`), /host2\.site\.test/);
    const leafFile = await ca!.signByIntermediate(join(reqDir!, 'host2.site.test.req'));
    const inter = readFileSync((await ca!.intermediate()).cert, 'utf8');
    const leaf = readFileSync(leafFile, 'utf8');
    const bundle = join(reqDir!, 'host2-bundle.pem');
    writeFileSync(bundle, leaf + inter + readFileSync(ca!.caCert, 'utf8'));
    const got = await cmd(sh!, `getcrt ${bundle}`);
    assert.match(got, /host2\.site\.test: stored with its issuing chain: CN=Passtore Fixture Intermediate CA,O=Test,DC=example,DC=org/);
    assert.match(await cmd(sh!, 'showcrt host2'), /chain: {7}CN=Passtore Fixture Intermediate CA,O=Test,DC=example,DC=org/);
    assert.match(await cmd(sh!, 'host profile host2 chained'), /host2\.site\.test is deployed by profile chained/);

    assert.match(await cmd(sh!, 'putcrt host2'), /host2\.site\.test: deployed 4 files of chained/);
    await assertGuardClosed(site!, 'putcrt host2 (profile chained)');
    const onH2 = async (name: string) => onHost(site!, h2, ['cat', `${CHAINED}/${name}`]);
    assert.equal(await onH2('host2.site.test.crt'), leaf);
    assert.equal(await onH2('host2.site.test-chain.pem'), inter, 'the chain: the intermediate, without the root');
    assert.equal(await onH2('host2.site.test-fullchain.pem'), leaf + inter, 'the certificate, then the chain');
    // The host's own openssl builds the path from the deployed files to the root.
    const root = join(CHAINED, 'root-for-test.pem');
    await onHost(site!, h2, ['sh', '-c', 'cat > "$1"', 'sh', root], readFileSync(ca!.caCert, 'utf8'));
    assert.match(await onHost(site!, h2, ['openssl', 'verify', '-CAfile', root, '-untrusted', `${CHAINED}/host2.site.test-chain.pem`, `${CHAINED}/host2.site.test.crt`]), /: OK/);
    await onHost(site!, h2, ['rm', '-f', root]);
    // Drift knows the chain file: right after the deploy it matches; changed by hand, it is named.
    assert.match(await cmd(sh!, 'lcrt host2 --remote'), /host2 .*matches the vault/);
    await onHost(site!, h2, ['sh', '-c', 'cat > "$1"', 'sh', `${CHAINED}/host2.site.test-chain.pem`], readFileSync(ca!.caCert, 'utf8'));
    assert.match(await cmd(sh!, 'lcrt host2 --remote'), /host2 .*DRIFT: \/etc\/pki\/chained\/host2\.site\.test-chain\.pem is not the vault's chain/);
    assert.match(await cmd(sh!, 'putcrt host2'), /host2\.site\.test: deployed 4 files of chained \(3 unchanged\)/);
    assert.equal(await onH2('host2.site.test-chain.pem'), inter, 'putcrt put the chain back');

    // A new certificate delivered alone (the root's own, no chain): a chain file cannot be written.
    const before = await onH2('host2.site.test-chain.pem');
    await certify(sh!, h2, ca!, reqDir!);
    assert.match(await cmd(sh!, 'showcrt host2'), /chain: {7}none stored/);
    oneError(await cmd(sh!, 'putcrt host2'), /^error: host2\.site\.test: no issuing chain is stored with the certificate, which a chain file needs/);
    await assertGuardClosed(site!, 'putcrt host2 (no chain)');
    assert.equal(await onH2('host2.site.test-chain.pem'), before, 'nothing changed on the host');
    assert.equal(await onH2('host2.site.test.crt'), leaf);
  });
});
