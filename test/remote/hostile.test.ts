/**
 * A hostile neighbour on the test site: host2 plays an attacker's sshd that knows (and
 * would accept) host1's root password. A script moves host1's address to it and tries to
 * pin its key; the pinned key refuses the connection before any secret is sent; and when
 * the operator does pin the new key at the terminal, host trust authenticates with
 * `none` only. The attacker's own sshd log (LogLevel DEBUG1: every authentication request is logged with its method) shows no password attempt.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Home, PtySession } from '../support/pty.js';
import { siteSkip, TestSite, type TestHost } from '../support/site.js';
import { assertGuardClosed, closeShell, cmd, createVault, fingerprintOf, oneError, trust, vaultHome } from './helpers.js';

describe('a moved host or an attacker sshd gets no secret', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let h1: TestHost;
  let evil: TestHost;
  let evilLog = '';

  before(async () => {
    site = await TestSite.start(2);
    [h1, evil] = site.hosts as [TestHost, TestHost];
    // The attacker knows host1's root password: a login with it would be accepted there.
    await site.onHost(evil, ['chpasswd'], `root:${h1.rootPassword}\n`);
    const config = join(site.dir, evil.name, 'sshd_config');
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^LogLevel .*$/m, 'LogLevel DEBUG1'));
    await site.stopSshd(evil);
    await site.startSshd(evil);
    evil.sshd!.stderr!.on('data', (d: Buffer) => (evilLog += d.toString()));
    home = vaultHome(site);
    sh = await createVault(site, home);
    assert.match(await cmd(sh, `host add ${h1.name} --address ${h1.address}`), /added host/);
    assert.match(await cmd(sh, `add ${h1.name}`, h1.rootPassword, h1.rootPassword), /stored root@host1/);
    await trust(sh, site, h1);
  });

  after(async () => {
    await closeShell(sh);
    await site?.stop();
    home?.remove();
  });

  const noPasswordTried = (when: string) => {
    assert.doesNotMatch(evilLog, /Accepted password|Failed password|password for root|method password/i, `${when}: the attacker's sshd saw no password:\n${evilLog}`);
  };

  test('6: a host\'s error output with terminal escapes reaches the screen and the audit trail escaped', async () => {
    // chpasswd on host1 (in its own mount namespace only) prints escapes and fails.
    const fake = join(site!.dir, 'chpasswd-hostile.sh');
    writeFileSync(fake, '#!/bin/sh\ncat >/dev/null\nprintf \'\\033]0;owned\\007\\033[2J\\302\\2332J\\342\\200\\256pwned\\n\' >&2\nexit 1\n', { mode: 0o755 });
    await site!.onHost(h1, ['mount', '--bind', fake, '/usr/sbin/chpasswd']);
    try {
      const start = sh!.transcript.length;
      await cmd(sh!, `update ${h1.name}`, h1.rootPassword, 'New-Pw-never-set-1', 'New-Pw-never-set-1');
      const audit = await cmd(sh!, `audit ${h1.name}`);
      const raw = sh!.transcript.slice(start);
      assert.ok(raw.includes('chpasswd failed: \\x1b]0;owned\\x07\\x1b[2J\\u009b2J\\u202epwned'), `escaped on screen: ${JSON.stringify(raw)}`);
      for (const bad of ['\x1b]0;', '\x1b[2J', '\x07', '\u009b', '\u202e']) assert.ok(!raw.includes(bad), `no raw ${JSON.stringify(bad)}`);
      assert.match(audit, /update/);
    } finally {
      await site!.onHost(h1, ['umount', '/usr/sbin/chpasswd']);
    }
    noPasswordTried('the failed update on host1');
  });

  test('a script may move host1 to the attacker, but not pin the attacker\'s key', async () => {
    const script = join(site!.dir, 'move.txt');
    writeFileSync(script, `host address ${h1.name} ${evil.address}\nhost trust ${h1.name} --replace\n`);
    const out = await cmd(sh!, `source ${script} --keep-going`);
    assert.match(out, new RegExp(`${h1.fqdn.replace(/\./g, '\\.')} is reached at ${evil.address.replace(/\./g, '\\.')}:22`));
    assert.match(out, /host trust decides what passtore trusts and runs only when typed at the terminal, never from a script/);
    await assertGuardClosed(site!, 'the script');
  });

  test('the pinned key refuses the attacker before any secret is sent', async () => {
    // getkey from host1 logs in as root with the stored password: the host key comes first.
    oneError(await cmd(sh!, `getkey ${h1.name} root@${h1.name}:/etc/hostname`), /the SSH host key changed .*connection refused/);
    await assertGuardClosed(site!, 'the refused connection');
    await new Promise((r) => setTimeout(r, 300));
    assert.match(evilLog, new RegExp(`Connection (from|closed by) ${site!.vaultAddress.replace(/\./g, '\\.')}|${site!.vaultAddress.replace(/\./g, '\\.')}`), 'the attacker was contacted');
    noPasswordTried('the refused connection');
  });

  test('host trust typed at the terminal reads the key and authenticates with none only', async () => {
    const out = await cmd(sh!, `host trust ${h1.name} --replace`, 'y');
    const fp = await fingerprintOf(site!, evil);
    assert.ok(out.includes(fp), `host trust shows the presented key ${fp}: ${out}`);
    assert.match(out, /pinned SHA256:\S+ for host1\.site\.test/);
    await assertGuardClosed(site!, 'host trust');
    await new Promise((r) => setTimeout(r, 300));
    assert.match(evilLog, /userauth-request for user root service ssh-connection method none/, `the attacker saw a none login attempt:\n${evilLog}`);
    noPasswordTried('host trust');
  });
});
