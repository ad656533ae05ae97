/**
 * Hosts configured the way real sites configure them, against the real shell and real
 * sshd hosts: host1 keeps OpenSSH's default for root (keys only), host2 refuses root
 * altogether and has a login user in group sudo, host3 takes root passwords, host4 is
 * keys-only too and is down while the deploy key is rotated. Shown here:
 *
 * - the deploy key: `sshkey create` and `show` (installed on the keys-only hosts as a
 *   provisioning system would), `sshkey install` over a password login (as root, and as
 *   the login user), once only, directory 0700 and file 0600;
 * - host1 gets its pair over the key, modes and owners right; after its root password was
 *   changed behind passtore's back, a deploy over the key still works and
 *   `passtore-cron verify` reports the mismatch (the host's shadow entry, over the key);
 *   `update --remote` changes it on the host over the key;
 * - host2 gets its pair as the login user through sudo, and no password appears in any
 *   process's argument list on either side meanwhile (read from /proc during the run);
 * - `sshkey rotate` with host4 down: hosts 1–3 end with the new key only, host4 with the
 *   old key, and passtore still reaches host4 (by the old key: it refuses passwords).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeHome, type Home, type PtySession } from '../support/pty.js';
import { siteSkip, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { runCron, show } from '../cron/helpers.js';
import { assertGuardClosed, certDir, certify, closeShell, cmd, oneError, onHost, openVault, PASSPHRASE, runUntilCrash, sha256, shadowAccepts, startSuite, stopSuite, trust } from './helpers.js';

/** Watches every process's argument list (both sides share this PID namespace) for secrets. */
class ArgvWatch {
  readonly seen: string[] = [];
  readonly commands = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly secrets: string[]) {}

  start(): void {
    const scan = () => {
      for (const pid of readdirSync('/proc')) {
        if (!/^\d+$/.test(pid)) continue;
        let argv: string;
        try {
          argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        } catch {
          continue;
        }
        if (!argv) continue;
        const words = argv.split('\0');
        this.commands.add(words[0]!.split('/').at(-1)!);
        for (const s of this.secrets) if (argv.includes(s)) this.seen.push(`${pid}: ${words.slice(0, 3).join(' ')}`);
      }
    };
    this.#timer = setInterval(scan, 3);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

describe('deploy keys, hosts that refuse root passwords, sudo', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let ca: FixtureCa | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let reqDir: string | undefined;
  let h1: TestHost;
  let h2: TestHost;
  let h3: TestHost;
  let h4: TestHost;
  let keyfile: string;
  let publicKey = '';

  const authorizedKeys = (h: TestHost, user = 'root'): string => {
    const file = user === 'root' ? join(site!.dir, h.name, 'root', '.ssh', 'authorized_keys') : join(h.loginUser!.home, '.ssh', 'authorized_keys');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  };
  const blob = (line: string) => line.split(' ')[1]!;

  before(async () => {
    keyfile = join(mkdtempSync(join(tmpdir(), 'passtore-access-key-')), 'cron.key');
    ({ site, ca, home, reqDir, sh } = await startSuite(4, {
      hosts: { 1: { rootLogin: 'default' }, 2: { rootLogin: 'no', loginUser: 'deployer' }, 4: { rootLogin: 'default' } },
      home: (s) => makeHome([`domain = ${s.domain}`, `keyfile = ${keyfile}`, ...s.networkConfig()]),
    }));
    [h1, h2, h3, h4] = site.hosts as [TestHost, TestHost, TestHost, TestHost];
  });

  after(async () => {
    await stopSuite({ sh, site, home, ca, reqDir });
    if (keyfile) rmSync(join(keyfile, '..'), { recursive: true, force: true });
  });

  test('sshkey create and show: one authorized_keys line, the private half only in the vault', async () => {
    const out = await cmd(sh!, 'sshkey create');
    assert.match(out, /created the deploy key SHA256:\S+/);
    assert.match(await cmd(sh!, 'sshkey create'), /error: the vault already holds the deploy key/);
    const shown = await cmd(sh!, 'sshkey show');
    const line = /^(ssh-ed25519 [A-Za-z0-9+/]+=* passtore-deploy-\S+)\s*$/m.exec(shown)?.[1];
    assert.ok(line, shown);
    publicKey = line;
    // Nothing in passtore's data directory holds an OpenSSH private key in plaintext.
    const data = join(home!.dir, '.local', 'share', 'passtore');
    for (const f of readdirSync(data)) assert.doesNotMatch(readFileSync(join(data, f)).toString('latin1'), /OPENSSH PRIVATE KEY/, f);
  });

  test('hosts are enrolled; host login sets the login user and sudo; list and showcrt show it', async () => {
    for (const h of [h1, h2, h3, h4]) {
      assert.match(await cmd(sh!, `host add ${h.name} --address ${h.address}`), /added host/);
      assert.match(await cmd(sh!, `add ${h.name}`, h.rootPassword, h.rootPassword), /stored root@/);
      await trust(sh!, site!, h);
    }
    assert.match(await cmd(sh!, `add deployer@${h2.name}`, h2.loginUser!.password, h2.loginUser!.password), /stored deployer@host2/);
    assert.match(await cmd(sh!, 'host login host2 --user deployer --sudo'), /host2\.site\.test is reached as deployer\+sudo/);
    assert.match(await cmd(sh!, 'host login host2 --user "bad name"'), /error: .*--user/);
    const listed = await cmd(sh!, 'list');
    assert.match(listed, /host2 +\S+ +deployer:ssh root:ssh +deployer\+sudo/);
    assert.match(listed, /host1 +\S+ +root:ssh +root\n/);
  });

  test('sshkey install: over a password login, once, ~/.ssh 0700 and authorized_keys 0600; keys-only hosts get it from sshkey show', async () => {
    // The keys-only hosts: as a provisioning system would, from sshkey show's line.
    for (const h of [h1, h4]) await onHost(site!, h, ['sh', '-c', 'mkdir -p -m 0700 /root/.ssh && cat >> /root/.ssh/authorized_keys', 'sh'], `${publicKey}\n`);
    // host3 has an unrelated key line without a final newline: it must stay as it is.
    await onHost(site!, h3, ['sh', '-c', 'mkdir -p /root/.ssh && chmod 0755 /root/.ssh && printf "ssh-ed25519 AAAAother operator@desk" > /root/.ssh/authorized_keys', 'sh']);
    const out = await cmd(sh!, 'sshkey install host[23]'.replace('[23]', '?'));
    assert.match(out, /host2\.site\.test +deploy key SHA256:\S+ installed/);
    assert.match(out, /host3\.site\.test +deploy key SHA256:\S+ installed/);
    assert.match(out, /host1\.site\.test +deploy key SHA256:\S+ was already installed/);
    await assertGuardClosed(site!, 'sshkey install');
    assert.equal(authorizedKeys(h3), `ssh-ed25519 AAAAother operator@desk\n${publicKey}\n`);
    assert.equal(authorizedKeys(h2, 'deployer'), `${publicKey}\n`);
    assert.equal(authorizedKeys(h2), '', 'host2: nothing for root');
    const modes = (file: string) => (statSync(file).mode & 0o777).toString(8);
    assert.equal(modes(join(site!.dir, 'host3', 'root', '.ssh')), '700');
    assert.equal(modes(join(site!.dir, 'host3', 'root', '.ssh', 'authorized_keys')), '600');
    assert.equal(modes(join(h2.loginUser!.home, '.ssh', 'authorized_keys')), '600');
    assert.equal(statSync(join(h2.loginUser!.home, '.ssh', 'authorized_keys')).uid, Number((await onHost(site!, h2, ['id', '-u', 'deployer'])).trim()), 'owned by the login user');
    // Again: nothing is added twice.
    assert.match(await cmd(sh!, 'sshkey install host3'), /was already installed/);
    assert.equal(authorizedKeys(h3).split(blob(publicKey)).length, 2);
  });

  test('host1 refuses root passwords: its pair goes over the deploy key, modes and owners right', async () => {
    for (const h of [h1, h2, h3, h4]) await certify(sh!, h, ca!, reqDir!);
    const out = await cmd(sh!, 'putcrt host1');
    assert.match(out, /host1\.site\.test: deployed to \/etc\/grid-security with the deploy key \(first deployment\)/);
    const files = await certDir(site!, h1);
    assert.equal(files.get('hostcert.pem')?.mode, '644');
    assert.equal(files.get('hostkey.pem')?.mode, '400');
    assert.equal(files.get('hostcert.pem')?.owner, 'root');
    assert.equal(files.get('hostkey.pem')?.owner, 'root');
    assert.match(await cmd(sh!, 'showcrt host1'), /reached as: +root, deploy key first/);
    await assertGuardClosed(site!, 'putcrt host1');
  });

  test('host1\'s root password changed behind passtore\'s back: deploy still works, verify reports it, update --remote fixes it', async () => {
    const behind = `Behind-${h1.rootPassword}`;
    await onHost(site!, h1, ['chpasswd'], `root:${behind}\n`);
    assert.match(await cmd(sh!, 'putcrt host1'), /deployed to \/etc\/grid-security with the deploy key \(the same pair was in place; no backup made\)/);
    assert.deepEqual([...(await certDir(site!, h1)).keys()].sort(), ['hostcert.pem', 'hostkey.pem'], 'no dated copy of identical files');
    assert.match(await cmd(sh!, `keyfile create ${keyfile}`, PASSPHRASE), /key file/);
    const dataHome = join(home!.dir, '.local', 'share');
    const r = await runCron(['--config', home!.configFile, 'verify'], { ns: site!.vaultNs, dataHome });
    assert.equal(r.code, 1, show(r));
    assert.ok(r.lines.some((l) => /verify host1\.site\.test: the host REFUSES the vault's root password/.test(l)), show(r));
    for (const h of [h2, h3]) assert.ok(r.lines.some((l) => l.includes(`verify ${h.fqdn}: the host accepts the vault's root password`)), show(r));
    await assertGuardClosed(site!, 'passtore-cron verify');
    // The operator learns the password and puts things right: set it on the host over the key.
    assert.match(await cmd(sh!, 'update host1 --local', h1.rootPassword, behind, behind), /updated root@host1/);
    const next = `Next-${h1.rootPassword}`;
    assert.match(await cmd(sh!, 'update host1', behind, next, next), /updated root@host1\.site\.test:ssh on the host and in the vault/);
    assert.equal(await shadowAccepts(site!, h1, next), true, 'the host has the new password');
    h1.rootPassword = next;
  });

  test('host2 refuses root: the pair goes in as the login user through sudo; no password in any argv on either side', async () => {
    const watch = new ArgvWatch([h2.loginUser!.password, h2.rootPassword]);
    watch.start();
    let out: string;
    try {
      out = await cmd(sh!, 'putcrt host2');
      // A root password change through sudo, confirmed against the shadow entry.
      const next = `Next-${h2.rootPassword}`;
      assert.match(await cmd(sh!, 'update host2', h2.rootPassword, next, next), /updated root@host2\.site\.test:ssh on the host and in the vault/);
      assert.equal(await shadowAccepts(site!, h2, next), true);
      h2.rootPassword = next;
    } finally {
      watch.stop();
    }
    assert.match(out, /host2\.site\.test: deployed to \/etc\/grid-security as deployer through sudo, with the deploy key \(first deployment\)/);
    assert.deepEqual(watch.seen, [], 'no password in a process argument list');
    assert.ok(watch.commands.has('sudo'), `sudo ran on host2 (seen: ${[...watch.commands].join(' ')})`);
    const files = await certDir(site!, h2);
    assert.deepEqual([files.get('hostcert.pem')?.mode, files.get('hostcert.pem')?.owner], ['644', 'root']);
    assert.deepEqual([files.get('hostkey.pem')?.mode, files.get('hostkey.pem')?.owner], ['400', 'root']);
    assert.match(await cmd(sh!, 'showcrt host2'), /reached as: +deployer\+sudo/);
    await assertGuardClosed(site!, 'putcrt host2');
  });

  test('a wrong stored sudo password with passwd_tries=5: sudo refuses it alone, the payload is never read as a password try', async () => {
    // sudo on host2 allows five tries and logs each refusal to a file of the test's own.
    const log = join(site!.dir, 'host2-sudo.log');
    await onHost(site!, h2, ['sh', '-c', 'printf "Defaults passwd_tries=5\\nDefaults logfile=%s\\n" "$1" > /etc/sudoers.d/passtore-tries && chmod 0440 /etc/sudoers.d/passtore-tries', 'sh', log]);
    const right = h2.loginUser!.password;
    const wrong = `Wrong-${right}`;
    const before = await certDir(site!, h2);
    assert.match(await cmd(sh!, 'update deployer@host2 --local', right, wrong, wrong), /updated deployer@host2/);
    let out: string;
    try {
      await certify(sh!, h2, ca!, reqDir!);
      out = await cmd(sh!, 'putcrt host2');
    } finally {
      assert.match(await cmd(sh!, 'update deployer@host2 --local', wrong, right, right), /updated deployer@host2/);
      await onHost(site!, h2, ['rm', '-f', '/etc/sudoers.d/passtore-tries']);
    }
    const line = oneError(out, /host2\.site\.test: sudo refused deployer \(1 incorrect password attempt\)/);
    assert.doesNotMatch(line, /[2-5] incorrect password attempts/);
    const logged = readFileSync(log, 'utf8');
    assert.match(logged, /1 incorrect password attempt/, logged);
    assert.doesNotMatch(logged, /[2-9] incorrect password attempts/, `no line of the payload was read as a try:\n${logged}`);
    assert.doesNotMatch(logged, /COMMAND=\S*sh -c/, 'the payload command never ran');
    const after = await certDir(site!, h2);
    assert.deepEqual(after, before, 'nothing changed on the host');
    await assertGuardClosed(site!, 'the refused sudo');
    // With the right password again, the pair goes in through sudo.
    assert.match(await cmd(sh!, 'putcrt host2'), /host2\.site\.test: deployed to \/etc\/grid-security as deployer through sudo/);
  });

  test('sshkey rotate with host4 down: the reachable hosts have the new key only, host4 keeps the old one and is still reached', async () => {
    await site!.stopSshd(h4);
    const out = await cmd(sh!, 'sshkey rotate');
    for (const h of [h1, h2, h3]) assert.match(out, new RegExp(`${h.fqdn} +new deploy key SHA256:\\S+ installed, old one removed`));
    assert.match(out, /host4\.site\.test +not rotated: .*cannot reach.*; it keeps the old key/);
    assert.match(out, /error: sshkey rotate did not reach 1 of 4 hosts/);
    await assertGuardClosed(site!, 'sshkey rotate');
    const fresh = (await cmd(sh!, 'sshkey show')).match(/ssh-ed25519 \S+ \S+/)![0];
    assert.notEqual(blob(fresh), blob(publicKey));
    for (const [h, user] of [[h1, 'root'], [h2, 'deployer'], [h3, 'root']] as const) {
      const text = authorizedKeys(h, user);
      assert.ok(text.includes(blob(fresh)), `${h.name}: the new key`);
      assert.ok(!text.includes(blob(publicKey)), `${h.name}: not the old key`);
    }
    assert.ok(authorizedKeys(h3).startsWith('ssh-ed25519 AAAAother operator@desk\n'), 'host3: the unrelated line stays');
    assert.ok(authorizedKeys(h4).includes(blob(publicKey)) && !authorizedKeys(h4).includes(blob(fresh)), 'host4: the old key only');
    // host4 refuses root passwords: only the old key, still tried, reaches it.
    await site!.startSshd(h4);
    assert.match(await cmd(sh!, 'putcrt host4'), /host4\.site\.test: deployed to \/etc\/grid-security with the deploy key/);
    // And hosts 1–3 are reached by the new key (host1 refuses passwords).
    assert.match(await cmd(sh!, 'putcrt host1'), /with the deploy key/);
    // A second rotation reaches host4 too, and retires the oldest key everywhere.
    const again = await cmd(sh!, 'sshkey rotate');
    assert.doesNotMatch(again, /error:/);
    const newest = (await cmd(sh!, 'sshkey show')).match(/ssh-ed25519 \S+ \S+/)![0];
    for (const h of [h1, h3, h4]) {
      const text = authorizedKeys(h);
      assert.ok(text.includes(blob(newest)) && !text.includes(blob(fresh)) && !text.includes(blob(publicKey)), `${h.name}: the newest key only`);
    }
    assert.equal(sha256(authorizedKeys(h4)), sha256(`${newest}\n`));
  });

  test('drift: a certificate replaced and a key mode changed by hand are reported by verify and lcrt --remote, and counted by check', async () => {
    assert.match(await cmd(sh!, 'putcrt host3'), /deployed to/);
    const dataHome = join(home!.dir, '.local', 'share');
    const cron = (what: string) => runCron(['--config', home!.configFile, what], { ns: site!.vaultNs, dataHome });
    const clean = await cron('verify');
    assert.equal(clean.code, 0, show(clean));
    for (const h of [h1, h2, h3, h4]) assert.ok(clean.lines.includes(`verify ${h.fqdn}: the deployed files match the vault`), show(clean));
    assert.match((await cron('check')).stdout, /^PASSTORE OK .* drifted=0;1;;0/);
    // By hand: host1's certificate replaced by host3's, host3's key made world-readable.
    await onHost(site!, h1, ['sh', '-c', 'cat > /etc/grid-security/hostcert.pem'], readFileSync(join(h3.etcUpper, 'grid-security', 'hostcert.pem'), 'utf8'));
    await onHost(site!, h3, ['chmod', '0644', '/etc/grid-security/hostkey.pem']);
    const r = await cron('verify');
    assert.equal(r.code, 1, show(r));
    assert.ok(r.lines.some((l) => l === `FAILED: verify ${h1.fqdn}: DRIFT: /etc/grid-security/hostcert.pem is not the vault's cert`), show(r));
    assert.ok(r.lines.some((l) => l === `FAILED: verify ${h3.fqdn}: DRIFT: /etc/grid-security/hostkey.pem has mode 644, not 400`), show(r));
    assert.ok(r.lines.includes(`verify ${h2.fqdn}: the deployed files match the vault`), show(r));
    await assertGuardClosed(site!, 'verify (drift)');
    const check = await cron('check');
    assert.equal(check.code, 1, show(check));
    assert.match(check.stdout, /^PASSTORE WARNING - 2 hosts drifted from the vault: host1\.site\.test, host3\.site\.test \| .*drifted=2;1;;0/);
    const listed = await cmd(sh!, "lcrt 'host*' --remote");
    assert.match(listed, /host1 .*DRIFT: \/etc\/grid-security\/hostcert\.pem is not the vault's cert/);
    assert.match(listed, /host3 .*DRIFT: \/etc\/grid-security\/hostkey\.pem has mode 644, not 400/);
    assert.match(listed, /host2 .*matches the vault/);
    await assertGuardClosed(site!, 'lcrt --remote');
    // putcrt puts both right; the next verify clears the count.
    assert.doesNotMatch(await cmd(sh!, "putcrt 'host[13]'".replace('[13]', '?')), /error:/);
    assert.equal((await cron('verify')).code, 0);
    assert.match((await cron('check')).stdout, /^PASSTORE OK/);
  });

  test('passtore killed in the middle of sshkey rotate: every host keeps a key passtore tries; the next rotate finishes', async () => {
    const old = blob((await cmd(sh!, 'sshkey show')).match(/ssh-ed25519 \S+ \S+/)![0]);
    await closeShell(sh);
    await runUntilCrash(site!, home!, 'sshkey-rotate-added', 'sshkey rotate');
    sh = (await openVault(site!, home!)).sh;
    const keysOf = (h: TestHost) => authorizedKeys(h, h === h2 ? 'deployer' : 'root');
    for (const h of [h1, h2, h3, h4]) assert.ok(keysOf(h).includes(old), `${h.name} still has the current key`);
    // The keys-only hosts are reached (by the current key, or the new one where it got in).
    assert.doesNotMatch(await cmd(sh, "putcrt 'host*'"), /error:/);
    const out = await cmd(sh, 'sshkey rotate');
    assert.doesNotMatch(out, /error:/);
    const now = blob((await cmd(sh, 'sshkey show')).match(/ssh-ed25519 \S+ \S+/)![0]);
    for (const h of [h1, h2, h3, h4]) {
      const lines = keysOf(h).split('\n').filter((l) => l.startsWith('ssh-ed25519 ') && !l.includes('operator@desk'));
      assert.deepEqual(lines.map(blob), [now], `${h.name}: the new key only`);
    }
  });
});
