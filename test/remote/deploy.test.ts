/**
 * putcrt against real sshd hosts: the pair put in place with its modes, owner and
 * content, the previous pair kept as dated backups, several hosts at once, and the
 * refusals (no certificate, a certificate that does not name the host, a changed host
 * key, bad remote paths) and failures (a refused password, an unreachable host, a host
 * whose command input ends or whose connection drops mid-transfer, passtore killed at
 * each deploy step). After every operation the vault side's network is closed again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { plain, type Home, type PtySession } from '../support/pty.js';
import { siteSkip, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import {
  assertGuardClosed,
  breakInputAfter,
  certDir,
  certFingerprint,
  certify,
  closeShell,
  cmd,
  CRT_DIR,
  dataDirOf,
  enrol,
  fingerprintOf,
  oneError,
  onHost,
  openVault,
  rekeyHost,
  restoreInput,
  reveal,
  runUntilCrash,
  sha256,
  spkiOfFile,
  spkiOnHost,
  startSuite,
  stopSuite,
  trust,
} from './helpers.js';

type Files = Awaited<ReturnType<typeof certDir>>;

/** The current certificate PEM the vault holds for a host (certificates are not secret). */
function storedCertPem(home: Home, fqdn: string): string {
  const db = new Database(join(dataDirOf(home), 'vault.db'), { readonly: true });
  try {
    const row = db.prepare("SELECT c.pem FROM certificates c JOIN hosts h ON h.id = c.host_id WHERE h.fqdn = ? AND c.state = 'current'").get(fqdn) as { pem: string } | undefined;
    assert.ok(row, `the vault holds a current certificate for ${fqdn}`);
    return row.pem;
  } finally {
    db.close();
  }
}

/** What a host's certificate directory holds, read from its overlay (works with sshd stopped). */
function upperFiles(h: TestHost): Map<string, string> {
  const dir = join(h.etcUpper, 'grid-security');
  const files = new Map<string, string>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) files.set(name, sha256(readFileSync(join(dir, name))));
  return files;
}

function names(files: Files): string[] {
  return [...files.keys()].sort();
}

/** The two files in place hold exactly `pair` (the same certificate and the same key). */
function assertPair(files: Files, pair: { cert: string; key: string }, what: string): void {
  assert.equal(files.get('hostcert.pem')?.sha256, pair.cert, `hostcert.pem is ${what}`);
  assert.equal(files.get('hostkey.pem')?.sha256, pair.key, `hostkey.pem is ${what}`);
}

const pairOf = (files: Files) => ({ cert: files.get('hostcert.pem')!.sha256, key: files.get('hostkey.pem')!.sha256 });

describe('putcrt: deploying key and certificate to the site hosts', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let ca: FixtureCa | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let reqDir: string | undefined;
  const latest = new Map<string, { request: string; cert: string }>();
  let h1: TestHost;
  let h2: TestHost;
  let h3: TestHost;

  before(async () => {
    ({ site, ca, home, reqDir, sh } = await startSuite(3));
    [h1, h2, h3] = site.hosts as [TestHost, TestHost, TestHost];
  });

  after(() => stopSuite({ sh, site, home, ca, reqDir }));

  /** Restarts the shell (a new passtore process on the same vault). */
  async function restart(env: Record<string, string> = {}): Promise<string> {
    await closeShell(sh);
    const opened = await openVault(site!, home!, env);
    sh = opened.sh;
    return opened.banner;
  }

  /**
   * Runs a command that may hang: returns its output, or undefined after `ms` (the shell
   * is then killed and restarted, which closes the guard it left open).
   */
  async function bounded(line: string, ms: number): Promise<{ out?: string; banner?: string }> {
    const start = sh!.mark;
    sh!.line(line);
    try {
      const end = await sh!.expect(/\npasstore> $/, { from: start + line.length, timeoutMs: ms });
      return { out: plain(sh!.transcript).slice(start, end) };
    } catch {
      sh!.kill();
      await sh!.exited(5_000).catch(() => undefined);
      sh = undefined;
      return { banner: await restart() };
    }
  }

  test('host add, add, host trust (the fingerprint the host shows), crtreq, fixture CA, getcrt', async () => {
    for (const h of [h1, h2]) latest.set(h.name, await enrol(sh!, site!, h, ca!, reqDir!));
    await assertGuardClosed(site!, 'enrolling the hosts');
  });

  test('putcrt host1 puts the pair in place: 0644 and 0400, owner root, equal to the vault\'s', async () => {
    const out = await cmd(sh!, 'putcrt host1');
    assert.match(out, /host1\.site\.test: deployed to \/etc\/grid-security/);
    await assertGuardClosed(site!, 'putcrt host1');

    const files = await certDir(site!, h1);
    assert.deepEqual(names(files), ['hostcert.pem', 'hostkey.pem'], 'only the pair: no temporary file, no backup of an absent pair');
    assert.deepEqual(files.get('hostcert.pem'), { sha256: files.get('hostcert.pem')!.sha256, mode: '644', owner: 'root' });
    assert.deepEqual(files.get('hostkey.pem'), { sha256: files.get('hostkey.pem')!.sha256, mode: '400', owner: 'root' });

    // The certificate: byte for byte the vault's, and the one the fixture CA issued.
    const pem = storedCertPem(home!, h1.fqdn);
    assert.equal(files.get('hostcert.pem')!.sha256, sha256(pem), 'hostcert.pem has the SHA-256 of the vault\'s certificate');
    const show = await cmd(sh!, 'showcrt host1');
    const vaultFingerprint = /SHA-256: +([0-9a-f]{64})/.exec(show)?.[1];
    const vaultSpki = /public key: +SHA-256 ([0-9a-f]{64})/.exec(show)?.[1];
    assert.ok(vaultFingerprint && vaultSpki, show);
    assert.equal(await certFingerprint(join(h1.etcUpper, 'grid-security', 'hostcert.pem')), vaultFingerprint);
    assert.equal(vaultFingerprint, await certFingerprint(latest.get('host1')!.cert));
    assert.doesNotMatch(show, /deployed: +never/);

    // The key: PKCS#8 PEM, the private half of the request's and certificate's public key.
    const keyText = readFileSync(join(h1.etcUpper, 'grid-security', 'hostkey.pem'), 'utf8');
    assert.match(keyText, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    const keySpki = await spkiOnHost(site!, h1, `${CRT_DIR}/hostkey.pem`, 'key');
    assert.equal(keySpki, await spkiOnHost(site!, h1, `${CRT_DIR}/hostcert.pem`, 'cert'), 'the deployed key matches the deployed certificate (openssl on the host)');
    assert.equal(keySpki, await spkiOfFile(latest.get('host1')!.request, 'req'), 'the deployed key is the one crtreq made');
    assert.equal(keySpki, vaultSpki);
  });

  test('a renewed pair is deployed and the previous pair is kept as dated backups', async () => {
    const before = await certDir(site!, h1);
    latest.set('host1', await certify(sh!, h1, ca!, reqDir!));
    const out = await cmd(sh!, 'putcrt host1');
    const stamp = /previous pair kept as \.(\d{8}T\d{6}\.\d{3}Z)/.exec(out)?.[1];
    assert.ok(stamp, out);
    await assertGuardClosed(site!, 'the second putcrt host1');

    const files = await certDir(site!, h1);
    assert.deepEqual(names(files), ['hostcert.pem', `hostcert.pem.${stamp}`, 'hostkey.pem', `hostkey.pem.${stamp}`]);
    assert.deepEqual(files.get(`hostcert.pem.${stamp}`), before.get('hostcert.pem'), 'the previous certificate, its mode and owner kept');
    assert.deepEqual(files.get(`hostkey.pem.${stamp}`), before.get('hostkey.pem'), 'the previous key, its mode and owner kept');
    assert.equal(files.get('hostcert.pem')!.sha256, sha256(storedCertPem(home!, h1.fqdn)));
    assert.notEqual(files.get('hostkey.pem')!.sha256, before.get('hostkey.pem')!.sha256);
    assert.equal(await spkiOnHost(site!, h1, `${CRT_DIR}/hostkey.pem`, 'key'), await spkiOfFile(latest.get('host1')!.request, 'req'));
    assert.equal(files.get('hostkey.pem')!.mode, '400');
    assert.equal(files.get('hostcert.pem')!.mode, '644');
  });

  test('putcrt host* deploys to every host, with a result table', async () => {
    const out = await cmd(sh!, 'putcrt host*');
    assert.match(out, /HOST\s+RESULT/);
    for (const h of [h1, h2]) assert.match(out, new RegExp(`${h.fqdn.replace(/\./g, '\\.')}\\s+deployed to /etc/grid-security`));
    assert.match(out, /deployed to 2 hosts/);
    await assertGuardClosed(site!, 'putcrt host*');
    const files = await certDir(site!, h2);
    assert.equal(files.get('hostcert.pem')?.sha256, sha256(storedCertPem(home!, h2.fqdn)));
    assert.equal(files.get('hostcert.pem')?.mode, '644');
    assert.equal(files.get('hostkey.pem')?.mode, '400');
    assert.equal(await spkiOnHost(site!, h2, `${CRT_DIR}/hostkey.pem`, 'key'), await spkiOfFile(latest.get('host2')!.request, 'req'));
  });

  test('a certificate that cannot be replaced after the key was: the previous key goes back, the old pair stays whole, the error says so', async () => {
    latest.set('host1', await certify(sh!, h1, ca!, reqDir!));
    const before = await certDir(site!, h1);
    // An immutable hostcert.pem: the key's rename succeeds, the certificate's fails.
    await onHost(site!, h1, ['chattr', '+i', `${CRT_DIR}/hostcert.pem`]);
    let out: string;
    try {
      out = await cmd(sh!, 'putcrt host1');
    } finally {
      await onHost(site!, h1, ['chattr', '-i', `${CRT_DIR}/hostcert.pem`]);
    }
    oneError(out, /host1\.site\.test: installing the pair failed: hostcert\.pem could not be replaced \(Operation not permitted\); the previous pair is back in place/);
    await assertGuardClosed(site!, 'the failed install');
    const files = await certDir(site!, h1);
    assertPair(files, pairOf(before), 'the previous one');
    assert.deepEqual(names(files).filter((n) => n.includes('passtore-new')), [], 'no temporary file is left');
    assert.equal(await spkiOnHost(site!, h1, `${CRT_DIR}/hostkey.pem`, 'key'), await spkiOnHost(site!, h1, `${CRT_DIR}/hostcert.pem`, 'cert'), 'key and certificate on the host match');

    // Once the file can be replaced, the new pair goes in.
    assert.match(await cmd(sh!, 'putcrt host1'), /host1\.site\.test: deployed/);
    assert.equal(await spkiOnHost(site!, h1, `${CRT_DIR}/hostkey.pem`, 'key'), await spkiOfFile(latest.get('host1')!.request, 'req'));
  });

  test('a certificate that cannot be replaced on a host with no previous key: the new key is removed again, nothing changed', async () => {
    await onHost(site!, h2, ['rm', '-f', `${CRT_DIR}/hostkey.pem`]);
    const before = await certDir(site!, h2);
    await onHost(site!, h2, ['chattr', '+i', `${CRT_DIR}/hostcert.pem`]);
    let out: string;
    try {
      out = await cmd(sh!, 'putcrt host2');
    } finally {
      await onHost(site!, h2, ['chattr', '-i', `${CRT_DIR}/hostcert.pem`]);
    }
    oneError(out, /host2\.site\.test: installing the pair failed: hostcert\.pem could not be replaced \(Operation not permitted\); nothing was changed \(the new key was removed again\)/);
    await assertGuardClosed(site!, 'the failed install on host2');
    assert.deepEqual(await certDir(site!, h2), before, 'the host holds what it held: no new key beside the old certificate');
    assert.match(await cmd(sh!, 'putcrt host2'), /host2\.site\.test: deployed/);
  });

  test('an old key left mode 0644 on the host: its dated backup is 0400, never readable by others', async () => {
    await onHost(site!, h1, ['chmod', '0644', `${CRT_DIR}/hostkey.pem`]);
    const before = await certDir(site!, h1);
    assert.equal(before.get('hostkey.pem')!.mode, '644');
    latest.set('host1', await certify(sh!, h1, ca!, reqDir!));
    const out = await cmd(sh!, 'putcrt host1');
    const stamp = /previous pair kept as \.(\d{8}T\d{6}\.\d{3}Z)/.exec(out)?.[1];
    assert.ok(stamp, out);
    const files = await certDir(site!, h1);
    assert.deepEqual(files.get(`hostkey.pem.${stamp}`), { sha256: before.get('hostkey.pem')!.sha256, mode: '400', owner: 'root' }, 'the previous key, mode 0400');
    assert.deepEqual(files.get(`hostcert.pem.${stamp}`), before.get('hostcert.pem'), 'the previous certificate as it was');
    assert.equal(files.get('hostkey.pem')!.mode, '400');
  });

  test('a certificate that does not name the host is refused before any connection', async () => {
    // Not reachable through commands (getcrt stores a certificate for the host it names):
    // the vault file is altered so that host2's pair belongs to host1.
    const before = await certDir(site!, h1);
    await closeShell(sh);
    sh = undefined;
    const file = join(dataDirOf(home!), 'vault.db');
    const swap = (db: Database.Database, from: string, to: string) => {
      const id = (fqdn: string) => (db.prepare('SELECT id FROM hosts WHERE fqdn = ?').get(fqdn) as { id: number }).id;
      const cert = db.prepare("SELECT id, key_id FROM certificates WHERE host_id = ? AND state = 'current'").get(id(from)) as { id: number; key_id: number };
      db.prepare('UPDATE certificates SET host_id = ? WHERE id = ?').run(id(to), cert.id);
      db.prepare('UPDATE private_keys SET host_id = ? WHERE id = ?').run(id(to), cert.key_id);
      return cert;
    };
    let db = new Database(file);
    const own = db.prepare("SELECT c.id FROM certificates c JOIN hosts h ON h.id = c.host_id WHERE h.fqdn = ? AND c.state = 'current'").get(h1.fqdn) as { id: number };
    db.prepare("UPDATE certificates SET state = 'history' WHERE id = ?").run(own.id);
    const moved = swap(db, h2.fqdn, h1.fqdn);
    db.close();
    // host1's sshd is stopped: an attempt to connect would fail differently.
    await site!.stopSshd(h1);
    try {
      await restart();
      const out = await cmd(sh!, 'putcrt host1');
      oneError(out, /host1\.site\.test: the certificate does not name this host; refused before any connection/);
      await assertGuardClosed(site!, 'the refused putcrt');
    } finally {
      await closeShell(sh);
      sh = undefined;
      db = new Database(file);
      const id = (fqdn: string) => (db.prepare('SELECT id FROM hosts WHERE fqdn = ?').get(fqdn) as { id: number }).id;
      db.prepare('UPDATE certificates SET host_id = ? WHERE id = ?').run(id(h2.fqdn), moved.id);
      db.prepare('UPDATE private_keys SET host_id = ? WHERE id = ?').run(id(h2.fqdn), moved.key_id);
      db.prepare("UPDATE certificates SET state = 'current' WHERE id = ?").run(own.id);
      db.close();
      await site!.startSshd(h1);
      await restart();
    }
    assert.deepEqual(await certDir(site!, h1), before, 'nothing changed on host1');
  });

  test('putcrt of a host with no certificate fails before any connection', async () => {
    assert.match(await cmd(sh!, `host add ${h3.name} --address ${h3.address}`), /added host/);
    assert.match(await cmd(sh!, `add ${h3.name}`, h3.rootPassword, h3.rootPassword), /stored/);
    await trust(sh!, site!, h3);
    await site!.stopSshd(h3);
    try {
      const out = await cmd(sh!, 'putcrt host3');
      oneError(out, /host3\.site\.test has no certificate to deploy/);
      await assertGuardClosed(site!, 'putcrt of a host without a certificate');
    } finally {
      await site!.startSshd(h3);
    }
    assert.equal((await certDir(site!, h3)).size, 0);
  });

  test('a host whose SSH key changed is refused, and nothing is written on it', async () => {
    latest.set('host3', await certify(sh!, h3, ca!, reqDir!));
    await rekeyHost(site!, h3);
    const now = await fingerprintOf(site!, h3);
    const out = await cmd(sh!, 'putcrt host3');
    oneError(out, new RegExp(`host3\\.site\\.test: the SSH host key changed \\(now ${now.replace(/[+/]/g, '\\$&')}\\); connection refused`));
    await assertGuardClosed(site!, 'the refused connection');
    assert.ok(!existsSync(join(h3.etcUpper, 'grid-security')), 'not even the directory was made');
    const showed = await cmd(sh!, 'showcrt host3');
    assert.match(showed, /deployed: +never/);

    // Trusting the new key needs --replace; then the deploy goes through.
    oneError(await cmd(sh!, 'host trust host3'), /already has a pinned SSH key/);
    assert.match(await cmd(sh!, 'host trust host3 --replace', 'y'), new RegExp(`pinned ${now.replace(/[+/]/g, '\\$&')}`));
    assert.match(await cmd(sh!, 'putcrt host3'), /host3\.site\.test: deployed/);
    await assertGuardClosed(site!, 'putcrt after host trust --replace');
    assert.equal((await certDir(site!, h3)).get('hostcert.pem')?.sha256, sha256(storedCertPem(home!, h3.fqdn)));
  });

  test('remote paths with .. or shell characters are refused with one line, before any prompt', async () => {
    const cases: Array<[string, RegExp]> = [
      ['getcrt root@host1:../x', /may not hold \.\./],
      ['getcrt root@host1:/etc/../x', /may not hold \.\./],
      ["getcrt 'root@host1:/tmp/a;b'", /may hold only letters, digits/],
      ["putreq host1 'u@host1:$(x)'", /may hold only letters, digits/],
      ["getkey host1 'root@host1:/tmp/`id`'", /may hold only letters, digits/],
      ["getcrt 'root@host1:/tmp/a b'", /may hold only letters, digits/],
    ];
    for (const [line, why] of cases) {
      const out = await cmd(sh!, line);
      oneError(out, why);
      assert.doesNotMatch(out, /Password for|Connect\?/, `${line}: nothing is asked`);
    }
    await assertGuardClosed(site!, 'the refused paths');
  });

  test('a stored password the host refuses: one clear error, nothing changed, guard closed', async () => {
    const before = await certDir(site!, h1);
    const wrong = 'Not-the-root-password-1';
    assert.match(await cmd(sh!, 'update host1 --local', h1.rootPassword, wrong, wrong), /updated root@host1\.site\.test:ssh/);
    try {
      oneError(await cmd(sh!, 'putcrt host1'), /host1\.site\.test: SSH authentication failed/);
      await assertGuardClosed(site!, 'the failed login');
    } finally {
      assert.match(await cmd(sh!, 'update host1 --local', wrong, h1.rootPassword, h1.rootPassword), /updated/);
    }
    assert.deepEqual(await certDir(site!, h1), before);
    assert.equal(await reveal(sh!, 'host1'), h1.rootPassword);
  });

  test('an unreachable host (sshd stopped): one clear error, nothing stored, guard closed', async () => {
    const shownBefore = /deployed: +(\S+)/.exec(await cmd(sh!, 'showcrt host2'))?.[1];
    const before = upperFiles(h2);
    await site!.stopSshd(h2);
    try {
      const out = await cmd(sh!, 'putcrt host2');
      oneError(out, new RegExp(`host2\\.site\\.test: cannot reach ${h2.address.replace(/\./g, '\\.')}:22 \\(ECONNREFUSED\\)`));
      await assertGuardClosed(site!, 'putcrt to an unreachable host');
      assert.deepEqual(upperFiles(h2), before);
    } finally {
      await site!.startSshd(h2);
    }
    assert.equal(/deployed: +(\S+)/.exec(await cmd(sh!, 'showcrt host2'))?.[1], shownBefore, 'the certificate is not marked deployed again');
  });

  test('a host whose command input ends mid-transfer: one clear error, no partial file, the previous pair in place', async () => {
    latest.set('host2', await certify(sh!, h2, ca!, reqDir!));
    const before = await certDir(site!, h2);
    // The deploy command's input stops in the middle of the certificate's bytes; the
    // command then sees the end of its input (the connection stays).
    await breakInputAfter(site!, h2, 600, 'input');
    let result: { out?: string; banner?: string };
    try {
      result = await bounded('putcrt host2', 15_000);
      await assertGuardClosed(site!, 'the broken transfer');
    } finally {
      await restoreInput(site!, h2);
    }
    const files = await certDir(site!, h2);
    assertPair(files, pairOf(before), 'the previous one');
    assert.ok(result.out !== undefined, 'putcrt ends when the host\'s command input ends mid-transfer (it hung; the next start closed the guard it left open)');
    oneError(result.out, /host2\.site\.test: installing the pair failed: the input ended before the install line: nothing was changed/);
    assert.deepEqual(names(files).filter((n) => n.includes('passtore-new')), [], 'no partial file is left');
  });

  test('a host that drops the connection mid-transfer: one clear error, never a mix, the guard closed', async () => {
    const before = await certDir(site!, h2);
    await breakInputAfter(site!, h2, 600, 'connection');
    let result: { out?: string; banner?: string };
    try {
      result = await bounded('putcrt host2', 15_000);
      await assertGuardClosed(site!, 'the dropped connection');
    } finally {
      await restoreInput(site!, h2);
    }
    const files = await certDir(site!, h2);
    assertPair(files, pairOf(before), 'the previous one');

    // The next deploy clears what the dropped one left and puts the new pair in place.
    if (!sh) await restart();
    assert.match(await cmd(sh!, 'putcrt host2'), /host2\.site\.test: deployed/);
    const after = await certDir(site!, h2);
    assert.deepEqual(names(after).filter((n) => n.includes('passtore-new')), [], 'no temporary file is left after the next deploy');
    assert.equal(after.get('hostcert.pem')!.sha256, sha256(storedCertPem(home!, h2.fqdn)));
    assert.equal(await spkiOnHost(site!, h2, `${CRT_DIR}/hostkey.pem`, 'key'), await spkiOfFile(latest.get('host2')!.request, 'req'));

    assert.ok(result.out !== undefined, 'putcrt ends when the host drops the connection mid-transfer (it hung; the next start closed the guard it left open)');
    oneError(result.out, /host2\.site\.test: /);
  });

  test('putreq and getcrt through a vault host: the request out and the certificate in over SFTP', async () => {
    if (!sh) await restart();
    await onHost(site!, h2, ['mkdir', '-p', '/etc/passtore-exchange']);
    assert.match(await cmd(sh!, 'crtreq host1'), /host1\.site\.test/);
    const put = await cmd(sh!, 'putreq host1 root@host2:/etc/passtore-exchange');
    assert.match(put, /copied the request of host1\.site\.test to root@host2\.site\.test:\/etc\/passtore-exchange\/host1\.site\.test\.req/);
    assert.doesNotMatch(put, /Password for/, 'a vault host with a pinned key is used with its stored root password');
    await assertGuardClosed(site!, 'putreq');
    const request = join(reqDir!, 'host1-via-host2.req');
    writeFileSync(request, readFileSync(join(h2.etcUpper, 'passtore-exchange', 'host1.site.test.req')));
    const cert = await ca!.sign(request, { out: ca!.path('host1-via-host2.crt') });
    await onHost(site!, h2, ['sh', '-c', 'cat > /etc/passtore-exchange/host1.crt'], readFileSync(cert, 'utf8'));
    const got = await cmd(sh!, 'getcrt root@host2:/etc/passtore-exchange/host1.crt');
    assert.match(got, /stored the certificate for host1\.site\.test/);
    await assertGuardClosed(site!, 'getcrt from a host');
    assert.equal(await certFingerprint(cert), /SHA-256: +([0-9a-f]{64})/.exec(await cmd(sh!, 'showcrt host1'))?.[1]);
    // A path that does not exist: one clear error.
    oneError(await cmd(sh!, 'getcrt root@host2:/etc/passtore-exchange/none.crt'), /host2\.site\.test: cannot read \/etc\/passtore-exchange\/none\.crt: no such file/);
    await assertGuardClosed(site!, 'the failed getcrt');
  });

  for (const step of ['deploy-write-cert', 'deploy-write-key', 'deploy-install']) {
    test(`killed at ${step}: the previous pair stays in place and the next start closes the guard`, async () => {
      if (!sh) await restart();
      latest.set('host1', await certify(sh!, h1, ca!, reqDir!));
      const before = await certDir(site!, h1);
      await closeShell(sh);
      await runUntilCrash(site!, home!, step, 'putcrt host1');
      sh = undefined;

      const left = await site!.vaultState();
      assert.equal(left.linkUp, true, 'the process died with the guard open');
      const files = await certDir(site!, h1);
      assertPair(files, pairOf(before), 'the previous one');

      const banner = await restart();
      assert.match(banner, /closed the network guard an earlier run left open \(1 target\)/);
      await assertGuardClosed(site!, `the start after a kill at ${step}`);

      assert.match(await cmd(sh!, 'putcrt host1'), /host1\.site\.test: deployed/);
      await assertGuardClosed(site!, 'the putcrt after the kill');
      const after = await certDir(site!, h1);
      assert.deepEqual(names(after).filter((n) => n.includes('passtore-new')), []);
      assert.equal(after.get('hostcert.pem')!.sha256, sha256(storedCertPem(home!, h1.fqdn)));
      assert.equal(await spkiOnHost(site!, h1, `${CRT_DIR}/hostkey.pem`, 'key'), await spkiOfFile(latest.get('host1')!.request, 'req'));
    });
  }
});
