/**
 * The network guard seen from the vault namespace: closed, nothing is reachable; open to
 * one host's SSH port, that port is reachable and another host is not; a guard left open
 * by a process killed meanwhile is closed by the next start of passtore.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Home } from '../support/pty.js';
import { siteSkip, TestSite } from '../support/site.js';
import { assertGuardClosed, closeShell, cmd, createVault, dataDirOf, openVault, runInVault, vaultHome } from './helpers.js';

interface Probe {
  open: { outcome: string; ms: number };
  other: { outcome: string; ms: number };
}

describe('the network guard', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let home: Home | undefined;
  let stateDir: string | undefined;

  before(async () => {
    site = await TestSite.start(2);
    home = vaultHome(site);
    stateDir = mkdtempSync(join(tmpdir(), 'passtore-guard-state-'));
    // A vault, so that a later start unlocks it (the recovery runs before that).
    await closeShell(await createVault(site, home));
  });

  after(async () => {
    await site?.stop();
    home?.remove();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  test('closed, neither host can be reached from the vault namespace', async () => {
    const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
    await assertGuardClosed(site!, 'the site was built');
    const r = await runInVault(site!, 'guard-probe', [home!.configFile, stateDir!, h1.address, h2.address, 'closed']);
    assert.equal(r.code, 0, r.stderr);
    const probe = JSON.parse(r.stdout) as Probe;
    assert.notEqual(probe.open.outcome, 'connected', `host1:22 is not reachable while the guard is closed (${probe.open.outcome})`);
    assert.notEqual(probe.other.outcome, 'connected', `host2:22 is not reachable while the guard is closed (${probe.other.outcome})`);
  });

  test('open to host1:22, host1 is reachable and host2 is not; closed again after', async () => {
    const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
    const r = await runInVault(site!, 'guard-probe', [home!.configFile, stateDir!, h1.address, h2.address, 'probe']);
    assert.equal(r.code, 0, r.stderr);
    const probe = JSON.parse(r.stdout) as Probe;
    assert.equal(probe.open.outcome, 'connected', `host1:22 is reachable through the guard (${probe.open.outcome})`);
    assert.notEqual(probe.other.outcome, 'connected', 'host2:22 is not reachable during the transfer to host1');
    assert.ok(probe.other.ms < 1_500, `the attempt on host2 ends within about a second (${probe.other.ms} ms)`);
    await assertGuardClosed(site!, 'the transfer to host1');
    assert.deepEqual(readdirSync(stateDir!).filter((n) => n.startsWith('guard-open')), [], 'no guard marker is left');
  });

  test('an SSH connection does not ask the host to prove the host keys it announces (an RSA signature and more per login)', async () => {
    const h1 = site!.hosts[0]!;
    const r = await runInVault(site!, 'hostkeys-probe', [home!.configFile, stateDir!, h1.address], { input: `${h1.rootPassword}\n` });
    assert.equal(r.code, 0, r.stderr);
    const sent = JSON.parse(r.stdout) as { bare: number; passtore: number };
    assert.ok(sent.bare >= 1, `the host announces its keys: a bare ssh2 client asks it to prove them (${r.stdout})`);
    assert.equal(sent.passtore, 0, `passtore's connection does not (${r.stdout})`);
    await assertGuardClosed(site!, 'the logins');
  });

  test('a guard left open by a killed process is closed at the next start of passtore', async () => {
    const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
    const r = await runInVault(site!, 'guard-probe', [home!.configFile, dataDirOf(home!), h1.address, h2.address, 'crash']);
    const markers = () => readdirSync(dataDirOf(home!)).filter((n) => n.startsWith('guard-open'));
    assert.equal(r.signal, 'SIGKILL', `the probe killed itself with the guard open: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout.trim(), 'open');
    const left = await site!.vaultState();
    assert.equal(left.linkUp, true, 'the crash left the link up');
    assert.equal(left.rules.length, 1, 'the crash left the allow rule');
    assert.ok(left.rules[0]!.includes(h1.address), left.rules[0]);
    assert.equal(markers().length, 1, 'the process\'s guard marker records what is open');

    const { sh, banner } = await openVault(site!, home!);
    try {
      assert.match(banner, /closed the network guard an earlier run left open \(1 target\)/);
      await assertGuardClosed(site!, 'the recovery at start');
      assert.deepEqual(markers(), [], 'the marker is removed');
    } finally {
      await closeShell(sh);
    }
    // A start with nothing left open says nothing about the guard.
    const again = await openVault(site!, home!);
    try {
      assert.doesNotMatch(again.banner, /network guard/);
    } finally {
      await closeShell(again.sh);
    }
    await assertGuardClosed(site!, 'a clean start');
  });

  test('a rule gone behind the guard\'s back: with check, the recovery at start closes its target; without, a failed revoke keeps the network down, not the vault closed', async () => {
    const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
    const markers = () => readdirSync(dataDirOf(home!)).filter((n) => n.startsWith('guard-open'));
    const crashLeavingNoRule = async () => {
      const r = await runInVault(site!, 'guard-probe', [home!.configFile, dataDirOf(home!), h1.address, h2.address, 'crash']);
      assert.equal(r.signal, 'SIGKILL', `the probe killed itself with the guard open: ${r.stdout}${r.stderr}`);
      // The rule removed behind the guard's back: the site's revoke (iptables -D) now fails on it.
      const [rule] = (await site!.vaultState()).rules;
      assert.ok(rule?.includes(h1.address), rule);
      execFileSync('ip', ['netns', 'exec', site!.vaultNs, 'iptables', ...rule.replace(/^-A /, '-D ').split(' ')]);
      assert.equal(markers().length, 1);
    };

    // The site's config has check (iptables -C): the failed revoke is of a rule already gone.
    await crashLeavingNoRule();
    const checked = await openVault(site!, home!);
    try {
      assert.match(checked.banner, /closed the network guard an earlier run left open \(1 target\)/);
      assert.doesNotMatch(checked.banner, /warning/);
      assert.deepEqual(markers(), [], 'the marker is removed');
    } finally {
      await closeShell(checked.sh);
    }
    await assertGuardClosed(site!, 'the recovery with check');

    // The same config without check: the revoke's failure stands.
    await crashLeavingNoRule();
    const noCheck = join(home!.dir, 'no-check.conf');
    writeFileSync(noCheck, readFileSync(home!.configFile, 'utf8').split('\n').filter((l) => !l.startsWith('check =')).join('\n'));
    const { sh, banner } = await openVault(site!, home!, { PASSTORE_CONFIG: noCheck });
    try {
      assert.match(banner, /warning: network guard: could not revoke a target an earlier run left open, kept in its marker to be tried again: .*; no host can be reached until it is revoked/);
      assert.equal((await site!.vaultState()).linkUp, false, 'the link is down');
      assert.equal(markers().length, 1, 'the marker is kept, to be tried again');
      // The vault itself opens and works.
      assert.match(await cmd(sh, `host add ${h1.name} --address ${h1.address}`), /added host/);
      // Reaching a host first revokes what is left: that fails again, so the link stays down.
      const trust = await cmd(sh, `host trust ${h1.name}`);
      assert.match(trust.replace(/\s+/g, ' '), /error: network guard: not bringing the network up: a rule left open could not be revoked/, trust);
      assert.equal((await site!.vaultState()).linkUp, false, 'the link stayed down');
    } finally {
      await closeShell(sh);
    }
    // With check again, the next start closes it.
    const again = await openVault(site!, home!);
    try {
      assert.match(again.banner, /closed the network guard an earlier run left open \(1 target\)/);
    } finally {
      await closeShell(again.sh);
    }
    assert.deepEqual(markers(), []);
    await assertGuardClosed(site!, 'the mended start');
  });
});
