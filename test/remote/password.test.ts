/**
 * update root@HOST:ssh against a real sshd host: the password changed on the host (its
 * /etc/shadow, and real SSH logins) and in the vault; passtore killed after each step of
 * the change and started again, the reconcile at start keeps the password the host
 * accepts; a refused stored password and an unreachable host lose nothing; a rekey in
 * another shell while update waits at its prompts loses nothing (the new password is
 * sealed under the new data key). After every operation the vault side's network is
 * closed again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pause, plain, type Home, type PtySession } from '../support/pty.js';
import { siteSkip, TestSite, type TestHost } from '../support/site.js';
import {
  assertGuardClosed,
  closeShell,
  cmd,
  createVault,
  oneError,
  openVault,
  reveal,
  shadowAccepts,
  sshAccepts,
  trust,
  vaultHome,
} from './helpers.js';

describe('update: changing root passwords on the hosts', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let stateDir: string | undefined;
  let h1: TestHost;
  /** The password host1 accepts now. */
  let current: string;
  let n = 0;
  const fresh = () => `New-Root-Pw-${++n}-${Math.random().toString(36).slice(2, 8)}`;

  before(async () => {
    site = await TestSite.start(1);
    h1 = site.hosts[0]!;
    current = h1.rootPassword;
    home = vaultHome(site);
    stateDir = mkdtempSync(join(tmpdir(), 'passtore-login-state-'));
    sh = await createVault(site, home);
    assert.match(await cmd(sh, `host add ${h1.name} --address ${h1.address}`), /added host/);
    assert.match(await cmd(sh, `add ${h1.name}`, current, current), /stored root@host1\.site\.test:ssh/);
    await trust(sh, site, h1);
  });

  after(async () => {
    await closeShell(sh);
    await site?.stop();
    home?.remove();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  /** The host accepts `yes` and refuses each of `no` (its /etc/shadow). */
  async function hostHas(yes: string, ...no: string[]): Promise<void> {
    assert.equal(await shadowAccepts(site!, h1, yes), true, 'the host\'s shadow holds the expected password');
    for (const p of no) assert.equal(await shadowAccepts(site!, h1, p), false, 'the host\'s shadow does not hold the other password');
  }

  test('update host1 changes the password on the host and in the vault', async () => {
    const next = fresh();
    const out = await cmd(sh!, 'update host1', current, next, next);
    assert.match(out, /updated root@host1\.site\.test:ssh on the host and in the vault/);
    await assertGuardClosed(site!, 'update host1');
    await hostHas(next, current);
    assert.deepEqual(await sshAccepts(site!, home!, h1, [next, current], stateDir!), [true, false], 'sshd accepts the new password and not the old one');
    await assertGuardClosed(site!, 'the login checks');
    assert.equal(await reveal(sh!, 'host1'), next);
    current = next;
  });

  test('a rekey in another shell while update waits at its prompts: nothing is sealed or sent under the replaced key; the shell is locked, the host and the vault keep the old password', async () => {
    const next = fresh();
    const start = sh!.mark;
    sh!.line('update host1');
    await sh!.expect(/Old password for [^\n]*: $/, { from: start });
    await pause(30);
    sh!.line(current);
    await sh!.expect(/New password for [^\n]*: $/, { from: start });
    await pause(30);
    sh!.line(next);
    await sh!.expect(/\(again\): $/, { from: start });
    // Another operator's shell replaces the root and data keys now, between the prompts and the seal.
    const { sh: other } = await openVault(site!, home!);
    try {
      assert.match(await cmd(other, 'rekey', 'y'), /re-encrypted/);
    } finally {
      await closeShell(other);
    }
    await pause(30);
    sh!.line(next);
    const end = await sh!.expect(/\npasstore> $/, { from: start, timeoutMs: 60_000 });
    // This shell's root key opens nothing new: it is locked, and the update stopped before
    // anything was sealed or sent to the host.
    assert.match(plain(sh!.transcript).slice(start, end), /the vault was rekeyed in another session \(new root key\); unlock again/);
    await hostHas(current, next);
    await closeShell(sh);
    ({ sh } = await openVault(site!, home!));
    assert.equal(await reveal(sh!, 'host1'), current, 'the vault keeps the password the host has, under the new key');
  });

  const steps: Array<[string, 'old' | 'new', RegExp]> = [
    ['passwd-pending-stored', 'old', /root@host1\.site\.test:ssh: the host kept the old password; the new one was dropped/],
    ['passwd-chpasswd-done', 'new', /root@host1\.site\.test:ssh: the host has the new password; it is now current/],
    ['passwd-verified', 'new', /root@host1\.site\.test:ssh: the host has the new password; it is now current/],
  ];
  for (const [step, kept, line] of steps) {
    test(`killed at ${step}: the next start reconciles to the password the host accepts (the ${kept} one)`, async () => {
      const next = fresh();
      await closeShell(sh);
      sh = (await openVault(site!, home!, { PASSTORE_CRASH_AT: step })).sh;
      let from = sh.mark;
      sh.line('update host1');
      for (const answer of [current, next, next]) {
        await sh.expect(/: $/, { from });
        await pause(30);
        from = sh.mark;
        sh.line(answer);
      }
      await sh.exited(30_000);
      sh = undefined;
      await assertGuardClosed(site!, `a kill at ${step}`);

      const expected = kept === 'new' ? next : current;
      const other = kept === 'new' ? current : next;
      await hostHas(expected, other);

      const opened = await openVault(site!, home!);
      sh = opened.sh;
      assert.match(opened.banner, /password changes were interrupted; reconciling with the hosts:/);
      assert.match(opened.banner, line);
      await assertGuardClosed(site!, 'the reconcile at start');
      assert.equal(await reveal(sh, 'host1'), expected, 'the vault holds the password the host accepts');
      assert.match(await cmd(sh, 'reconcile'), /no interrupted password change/);
      await hostHas(expected, other);
      current = expected;
    });
  }

  test('a stored password the host refuses: the change fails, nothing is lost, reconcile settles it', async () => {
    const wrong = 'Wrong-Stored-Pw-9';
    const next = fresh();
    assert.match(await cmd(sh!, 'update host1 --local', current, wrong, wrong), /updated root@host1\.site\.test:ssh/);
    const out = await cmd(sh!, 'update host1', wrong, next, next);
    oneError(out, /host1\.site\.test: SSH authentication failed/);
    await assertGuardClosed(site!, 'the refused login');
    await hostHas(current, next, wrong);
    assert.equal(await reveal(sh!, 'host1'), wrong, 'the current password in the vault is unchanged');

    // Neither stored password logs in: both stay stored.
    assert.match(await cmd(sh!, 'reconcile'), /root@host1\.site\.test:ssh: neither password logs in; both kept, check the host/);
    await assertGuardClosed(site!, 'the failed reconcile');
    // Once the right one is stored again, reconcile drops the pending one.
    assert.match(await cmd(sh!, 'update host1 --local', wrong, current, current), /updated/);
    assert.match(await cmd(sh!, 'reconcile'), /root@host1\.site\.test:ssh: the host kept the old password; the new one was dropped/);
    await assertGuardClosed(site!, 'reconcile');
    assert.equal(await reveal(sh!, 'host1'), current);
    await hostHas(current, next, wrong);
  });

  test('an unreachable host (sshd stopped): one clear error, the vault keeps the password, guard closed', async () => {
    const next = fresh();
    await site!.stopSshd(h1);
    try {
      const out = await cmd(sh!, 'update host1', current, next, next);
      oneError(out, new RegExp(`host1\\.site\\.test: cannot reach ${h1.address.replace(/\./g, '\\.')}:22 \\(ECONNREFUSED\\)`));
      await assertGuardClosed(site!, 'update of an unreachable host');
      assert.equal(await reveal(sh!, 'host1'), current);
    } finally {
      await site!.startSshd(h1);
    }
    await hostHas(current, next);
    // The pending password is resolved as soon as the host answers again.
    const settled = await cmd(sh!, 'reconcile');
    assert.match(settled, /root@host1\.site\.test:ssh: the host kept the old password; the new one was dropped/);
    assert.equal(await reveal(sh!, 'host1'), current);
    await assertGuardClosed(site!, 'reconcile');
  });
});
