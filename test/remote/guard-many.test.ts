/**
 * The network guard with many targets and many processes, on the test site:
 *  - 20 targets opened at once, one at a time, with `parallel = yes` (iptables -w) and
 *    with a batch command (iptables-restore --noflush): a prober tries every host all
 *    the while, and no host answers outside the time its own target is open (a rule
 *    never names more than one address and port); every opened host answers inside it;
 *  - a process killed during the batch open (with and without `parallel = yes`): recovery
 *    leaves no rule and the link down;
 *  - a shell-like process with an open transfer beside a cron-like process that opens
 *    and closes its own: the second does not cut the first's transfer (no `down` while a
 *    live process holds a target); the first killed, recovery closes what it left, and
 *    only that.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { siteSkip, TestSite } from '../support/site.js';
import { assertGuardClosed, runInVault, SCRIPT } from './helpers.js';

const RULE = '-o vault0 -d {address} -p tcp --dport {port} -j ACCEPT';

/** The batch form: one iptables-restore opens or closes every target that is waiting. */
const BATCH = [
  'up = ip link set vault0 up',
  'down = ip link set vault0 down',
  'batch = iptables-restore -w --noflush',
  'batch_begin = *filter',
  `batch_allow = "-I OUTPUT ${RULE}"`,
  `batch_revoke = "-D OUTPUT ${RULE}"`,
  'batch_end = COMMIT',
];

/** The [network] sections of each mechanism, on the site's vault namespace. */
const MECHANISMS: Record<string, string[]> = {
  serial: ['up = ip link set vault0 up', 'down = ip link set vault0 down', `allow = iptables -I OUTPUT ${RULE}`, `revoke = iptables -D OUTPUT ${RULE}`],
  parallel: ['up = ip link set vault0 up', 'down = ip link set vault0 down', `allow = iptables -w -I OUTPUT ${RULE}`, `revoke = iptables -w -D OUTPUT ${RULE}`, 'parallel = yes'],
  batch: BATCH,
  // The batch with `parallel = yes`: up and down run beside the batch commands.
  'batch-parallel': [...BATCH, 'parallel = yes'],
};

describe('the network guard, many targets and processes', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let dir: string | undefined;
  const config = (mechanism: string): string => {
    const file = join(dir!, `${mechanism}.conf`);
    // A batch's lone revokes (recovery, retries) use `revoke`: one that succeeds when the
    // rule is gone already, as passtore.conf(5) asks (a kill may come before the batch ran).
    const revoke = mechanism.startsWith('batch') ? [`revoke = ${join(dir!, 'revoke')} {address} {port}`] : [];
    writeFileSync(file, ['[network]', ...MECHANISMS[mechanism]!, ...revoke, ''].join('\n'));
    return file;
  };
  const stateDir = (name: string): string => {
    const d = join(dir!, `state-${name}`);
    return d;
  };

  before(async () => {
    site = await TestSite.start(24);
    dir = mkdtempSync(join(tmpdir(), 'passtore-guard-many-'));
    writeFileSync(
      join(dir, 'revoke'),
      ['#!/bin/sh', 'iptables -w -C OUTPUT -o vault0 -d "$1" -p tcp --dport "$2" -j ACCEPT 2>/dev/null', 'case $? in 0) ;; 1) exit 0 ;; *) exit 1 ;; esac', 'exec iptables -w -D OUTPUT -o vault0 -d "$1" -p tcp --dport "$2" -j ACCEPT', ''].join('\n'),
      { mode: 0o755 },
    );
  });

  after(async () => {
    await site?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const mechanism of Object.keys(MECHANISMS)) {
    test(`${mechanism}: 20 targets at once; no host answers outside its own target's window`, async () => {
      const open = site!.hosts.slice(0, 20).map((h) => h.address);
      const closed = site!.hosts.slice(20).map((h) => h.address);
      const r = await runInVault(site!, 'guard-many', [config(mechanism), stateDir(mechanism), 'run', open.join(','), closed.join(',')], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      const result = JSON.parse(r.stdout) as { violations: unknown[]; reached: number; attempts: number; wall: number; batchesToOpen: number };
      assert.deepEqual(result.violations, [], 'no connection succeeded outside its own target\'s window');
      assert.equal(result.reached, 20, `every opened host was reached while open (${result.attempts} attempts)`);
      // The 20 opens start together: one batch command opens them all.
      if (mechanism.startsWith('batch')) assert.equal(result.batchesToOpen, 1, `one batch command opened the 20 targets (${result.batchesToOpen})`);
      await assertGuardClosed(site!, `the ${mechanism} run`);
      assert.deepEqual(readdirSync(stateDir(mechanism)).filter((n) => n.startsWith('guard-open')), [], 'no marker is left');
      console.log(`# ${mechanism}: 20 targets opened, held 0.3-0.6 s and closed in ${Math.round(result.wall)} ms`);
    });
  }

  for (const mechanism of ['batch', 'batch-parallel']) {
    test(`${mechanism}: a kill during the batch open; the next start leaves no rule`, async () => {
      const state = stateDir(`crash-${mechanism}`);
      const open = site!.hosts.slice(0, 20).map((h) => h.address);
      const r = await runInVault(site!, 'guard-many', [config(mechanism), state, 'crash', open.join(',')]);
      assert.equal(r.signal, 'SIGKILL', `the process killed itself: ${r.stdout}${r.stderr}`);
      assert.ok(r.stdout.split('\n').filter((l) => l.startsWith('opened')).length < 20, `killed before every open ended: ${r.stdout}`);
      const left = await site!.vaultState();
      assert.equal(left.linkUp, true, 'the kill left the link up');
      const rec = await runInVault(site!, 'guard-many', [config(mechanism), state, 'recover']);
      assert.equal(rec.code, 0, rec.stderr);
      assert.equal(rec.stdout.trim(), '20', 'recovery closed the 20 recorded targets');
      await assertGuardClosed(site!, 'the recovery');
      assert.deepEqual(readdirSync(state).filter((n) => n.startsWith('guard-open')), [], 'the marker is removed');
    });
  }

  test('a cron run beside a shell\'s open transfer does not cut it; the shell killed, recovery closes only what it left', async () => {
    const state = stateDir('side-by-side');
    const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
    const conf = config('serial');
    const shell = spawn('ip', ['netns', 'exec', site!.vaultNs, process.execPath, SCRIPT('guard-many'), conf, state, 'hold', h1.address], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    shell.stderr.on('data', (d) => (stderr += d));
    const lines = createInterface({ input: shell.stdout })[Symbol.asyncIterator]();
    const next = async () => (await lines.next()).value as string | undefined;
    try {
      assert.equal(await next(), 'open', stderr);
      shell.stdin.write('check\n');
      assert.equal(await next(), 'connected', 'the shell reaches its host');

      // The cron run: its own target opened, used and closed, in another process.
      const cron = await runInVault(site!, 'guard-probe', [conf, state, h2.address, h1.address, 'probe']);
      assert.equal(cron.code, 0, cron.stderr);
      assert.equal((JSON.parse(cron.stdout) as { open: { outcome: string } }).open.outcome, 'connected', 'the cron run reached its host');

      shell.stdin.write('check\n');
      assert.equal(await next(), 'connected', 'the cron run did not cut the shell\'s transfer');
      const during = await site!.vaultState();
      assert.equal(during.linkUp, true);
      assert.equal(during.rules.length, 1, `only the shell's rule is left: ${during.rules.join(' / ')}`);
      assert.ok(during.rules[0]!.includes(h1.address));

      // A start while the shell lives closes nothing of it.
      const early = await runInVault(site!, 'guard-many', [conf, state, 'recover']);
      assert.equal(early.stdout.trim(), '0', 'a live process\'s marker is left alone');
      shell.stdin.write('check\n');
      assert.equal(await next(), 'connected', 'recovery did not cut the live shell\'s transfer');
    } finally {
      shell.kill('SIGKILL');
      await new Promise((resolve) => shell.once('close', resolve));
    }
    // `ip netns exec` passes the kill on by exec; the node process is the one killed.
    const left = await site!.vaultState();
    assert.equal(left.rules.length, 1, 'the killed shell left its rule');
    const rec = await runInVault(site!, 'guard-many', [conf, state, 'recover']);
    assert.equal(rec.stdout.trim(), '1', rec.stderr);
    await assertGuardClosed(site!, 'the recovery after the shell was killed');
    assert.deepEqual(readdirSync(state).filter((n) => n.startsWith('guard-open')), [], 'no marker is left');
  });
});
