/**
 * The network guard when a command, the lock or the marker fails, with real iptables in
 * the test site's vault namespace (scripts the test writes stand in for commands that
 * fail): after every outcome no rule is left that no marker records, and every error is
 * one line.
 *  - the lock held by another process past the wait: the close fails with one line, the
 *    process is not frozen meanwhile, the target stays recorded, and opening it again
 *    does not hang (one at a time, and batch);
 *  - one line of a batch fails: the other targets' revokes still happen, and the failed
 *    one stays recorded;
 *  - a dead process's rules are revoked before this process brings the network up (one
 *    at a time, and batch);
 *  - the marker cannot be written: no batch command runs (batch with `parallel = yes`);
 *  - `up` fails in batch mode: no allow line runs, and no revoke is sent for it;
 *  - `revoke` fails: the target stays recorded, also through a recovery that fails, until
 *    a revoke succeeds.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { siteSkip, TestSite } from '../support/site.js';
import { assertGuardClosed, runInVault, SCRIPT } from './helpers.js';

const RULE = '-o vault0 -d {address} -p tcp --dport {port} -j ACCEPT';
const UP = ['up = ip link set vault0 up', 'down = ip link set vault0 down'];
const SERIAL = [...UP, `allow = iptables -I OUTPUT ${RULE}`, `revoke = iptables -D OUTPUT ${RULE}`];
const BATCH_LINES = ['batch_begin = *filter', `batch_allow = "-I OUTPUT ${RULE}"`, `batch_revoke = "-D OUTPUT ${RULE}"`, 'batch_end = COMMIT'];
const BATCH = [...UP, 'batch = iptables-restore -w --noflush', ...BATCH_LINES];

interface Marker {
  targets: Array<{ address: string; port: number }>;
  stale?: Array<{ address: string; port: number }>;
}

describe('the network guard when something fails', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let dir: string | undefined;
  let n = 0;
  /** A config file of these [network] lines, and a fresh state directory. */
  const setup = (lines: string[]): { conf: string; state: string } => {
    const conf = join(dir!, `net-${++n}.conf`);
    writeFileSync(conf, ['[network]', ...lines, ''].join('\n'));
    return { conf, state: join(dir!, `state-${n}`) };
  };
  const script = (name: string, body: string): string => {
    const file = join(dir!, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  };
  const markers = (state: string) => (existsSync(state) ? readdirSync(state).filter((f) => f.startsWith('guard-open')) : []);
  const addr = (m: Marker | undefined, field: 'targets' | 'stale') => (m?.[field] ?? []).map((t) => t.address);
  let idempotentRevoke = '';

  before(async () => {
    site = await TestSite.start(3);
    dir = mkdtempSync(join(tmpdir(), 'passtore-guard-faults-'));
    // A revoke that succeeds when the rule is gone already, as passtore.conf(5) asks.
    idempotentRevoke = script(
      'revoke',
      ['iptables -w -C OUTPUT -o vault0 -d "$1" -p tcp --dport "$2" -j ACCEPT 2>/dev/null', 'case $? in 0) ;; 1) exit 0 ;; *) exit 1 ;; esac', 'exec iptables -w -D OUTPUT -o vault0 -d "$1" -p tcp --dport "$2" -j ACCEPT'].join('\n'),
    );
  });

  // Each test starts from a closed guard, whatever an earlier one (failing) left.
  beforeEach(async () => {
    const run = promisify(execFile);
    for (const rule of (await site!.vaultState()).rules) await run('ip', ['netns', 'exec', site!.vaultNs, 'iptables', ...rule.replace(/^-A /, '-D ').split(' ')]);
    await run('ip', ['netns', 'exec', site!.vaultNs, 'ip', 'link', 'set', 'vault0', 'down']);
  });

  after(async () => {
    await site?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, lines] of [
    ['one at a time', SERIAL],
    ['batch', BATCH],
  ] as const) {
    test(`${name}: the lock held by another process past the wait fails the close in one line, without freezing the process; the target stays recorded and opens again`, async () => {
      const h1 = site!.hosts[0]!;
      const { conf, state } = setup(lines);
      const r = await runInVault(site!, 'guard-faults', [conf, state, 'lock', h1.address], { timeoutMs: 40_000 });
      assert.equal(r.code, 0, `the guard did not hang (${r.signal ?? r.code}): ${r.stdout}${r.stderr}`);
      const out = JSON.parse(r.stdout) as { closeError: string; maxGap: number; afterFailure: Marker | null; reopen: string; reclose: string; end: unknown };
      assert.equal(out.closeError, 'network guard: another passtore process held the guard lock for 2 s');
      assert.ok(out.maxGap < 1_000, `the event loop ran while the lock was awaited (longest pause ${out.maxGap} ms)`);
      assert.deepEqual([...addr(out.afterFailure ?? undefined, 'targets'), ...addr(out.afterFailure ?? undefined, 'stale')], [h1.address], 'the target whose rule is still there stays recorded');
      assert.equal(out.reopen, 'ok', 'the same target opens again once the lock is free');
      assert.equal(out.reclose, 'ok');
      assert.equal(out.end, null, 'nothing left recorded');
      await assertGuardClosed(site!, 'the lock failure and the second open');
    });
  }

  test('batch: one failed line does not undo the others; the failed revoke stays recorded, the others are forgotten', async () => {
    const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
    const { conf, state } = setup(BATCH);
    const r = await runInVault(site!, 'guard-faults', [conf, state, 'lost', h1.address, h2.address]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { closeA: string; closeB: string; end: Marker | null };
    assert.match(out.closeA, /^network guard: batch revoke command failed: /);
    assert.equal(out.closeB, 'ok', 'the other target\'s revoke was run again alone');
    assert.deepEqual(addr(out.end ?? undefined, 'stale'), [h1.address], 'the target whose revoke failed is still recorded');
    assert.deepEqual(addr(out.end ?? undefined, 'targets'), []);
    await assertGuardClosed(site!, 'a batch with one failed line');
    // The next start, with a revoke that succeeds when the rule is gone, clears the record.
    const { conf: fixed } = setup([...BATCH, `revoke = ${idempotentRevoke} {address} {port}`]);
    const rec = await runInVault(site!, 'guard-many', [fixed, state, 'recover']);
    assert.equal(rec.stdout.trim(), '1', rec.stderr);
    assert.deepEqual(markers(state), []);
  });

  for (const name of ['one at a time', 'batch']) {
    test(`${name}: a dead process's rules are revoked before this process brings the network up`, async () => {
      const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
      const { conf, state } = setup(name === 'batch' ? [...BATCH, `revoke = ${idempotentRevoke} {address} {port}`] : SERIAL);
      const crash = await runInVault(site!, 'guard-probe', [conf, state, h1.address, h2.address, 'crash']);
      assert.equal(crash.signal, 'SIGKILL', crash.stderr);
      assert.equal((await site!.vaultState()).rules.length, 1, 'the killed process left its rule');
      const r = await runInVault(site!, 'guard-faults', [conf, state, 'open', h2.address]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { rules: string[]; markers: string[] };
      assert.equal(out.rules.length, 1, `only this process's rule while it is open: ${out.rules.join(' / ')}`);
      assert.ok(out.rules[0]!.includes(h2.address), out.rules[0]);
      assert.equal(out.markers.length, 1, `the dead process's marker is gone: ${out.markers.join(' ')}`);
      await assertGuardClosed(site!, 'the open after a crash');
      assert.deepEqual(markers(state), []);
    });
  }

  test('batch with parallel = yes: when the marker cannot be written, no batch command runs', async () => {
    const h1 = site!.hosts[0]!;
    const log = join(dir!, 'batch-parallel.log');
    const spy = script('spy-batch-parallel', `tee -a '${log}' | iptables-restore -w --noflush`);
    const { conf, state } = setup([...UP, `batch = ${spy}`, ...BATCH_LINES, 'parallel = yes']);
    const r = await runInVault(site!, 'guard-faults', [conf, state, 'open-fails', h1.address, 'jam']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { error: string };
    assert.equal(existsSync(log) ? readFileSync(log, 'utf8') : '', '', 'the batch command never ran');
    assert.match(out.error, /^network guard: cannot write its marker .*: EISDIR$/);
    await assertGuardClosed(site!, 'a marker that could not be written');
  });

  test('batch: when up fails, no allow line runs and no revoke is sent for the target', async () => {
    const h1 = site!.hosts[0]!;
    const log = join(dir!, 'batch-up.log');
    const spy = script('spy-batch', `tee -a '${log}' | iptables-restore -w --noflush`);
    const failUp = script('fail-up', 'echo "link refused" >&2; exit 1');
    const { conf, state } = setup([`up = ${failUp}`, 'down = ip link set vault0 down', `batch = ${spy}`, ...BATCH_LINES]);
    const r = await runInVault(site!, 'guard-faults', [conf, state, 'open-fails', h1.address]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { error: string; end: unknown };
    assert.equal(out.error, "network guard: 'up' command failed: link refused");
    assert.doesNotMatch(existsSync(log) ? readFileSync(log, 'utf8') : '', new RegExp(h1.address.replaceAll('.', '\\.')), 'no line for the target was sent');
    assert.equal(out.end, null, 'nothing left recorded');
    await assertGuardClosed(site!, 'a failed up');
  });

  test('a running process\'s target whose revoke failed is revoked before another process brings the network up', async () => {
    const [h1, h2] = site!.hosts as [TestSite['hosts'][0], TestSite['hosts'][0]];
    const failRevoke = script('fail-revoke-stay', 'echo "revoke refused" >&2; exit 1');
    const { conf, state } = setup([...UP, `allow = iptables -I OUTPUT ${RULE}`, `revoke = ${failRevoke} {address} {port}`]);
    const a = spawn('ip', ['netns', 'exec', site!.vaultNs, process.execPath, SCRIPT('guard-faults'), conf, state, 'close-fails-stay', h1.address], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(createInterface({ input: a.stdout! }), 'line')) as [string];
      const out = JSON.parse(line) as { error: string; end: Marker | null };
      assert.deepEqual(addr(out.end ?? undefined, 'stale'), [h1.address], 'A keeps it recorded, alive');
      assert.equal((await site!.vaultState()).rules.length, 1, "A's rule is still there");

      // B, with a revoke that works, opens h2: before its up, A's stale rule goes.
      const { conf: good } = setup(SERIAL);
      const b = await runInVault(site!, 'guard-faults', [good, state, 'open', h2.address]);
      assert.equal(b.code, 0, b.stderr);
      const seen = JSON.parse(b.stdout) as { rules: string[] };
      assert.equal(seen.rules.length, 1, `while B worked only its own rule existed: ${seen.rules.join(' | ')}`);
      assert.ok(seen.rules[0]!.includes(h2.address), seen.rules[0]);
    } finally {
      a.stdin!.end();
      await once(a, 'close');
    }
    await assertGuardClosed(site!, "B's run, with A's stale rule revoked");
  });

  test('a failed revoke keeps its target recorded, also through a recovery whose revoke fails, until one succeeds', async () => {
    const [h1] = site!.hosts as [TestSite['hosts'][0]];
    const failRevoke = script('fail-revoke', 'echo "revoke refused" >&2; exit 1');
    const { conf, state } = setup([...UP, `allow = iptables -I OUTPUT ${RULE}`, `revoke = ${failRevoke} {address} {port}`]);
    const r = await runInVault(site!, 'guard-faults', [conf, state, 'close-fails', h1.address]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { error: string; end: Marker | null };
    assert.equal(out.error, "network guard: 'revoke' command failed: revoke refused");
    assert.deepEqual(addr(out.end ?? undefined, 'stale'), [h1.address], 'recorded while its rule may exist');
    assert.equal((await site!.vaultState()).rules.length, 1, 'the rule is still there');

    const failed = await runInVault(site!, 'guard-many', [conf, state, 'recover']);
    assert.notEqual(failed.code, 0, 'the recovery says it could not close it');
    assert.match(failed.stderr, /network guard: could not revoke a target an earlier run left open, kept in its marker to be tried again: .*revoke refused/);
    assert.equal(markers(state).length, 1, 'the marker is kept');

    const { conf: good } = setup(SERIAL);
    const rec = await runInVault(site!, 'guard-many', [good, state, 'recover']);
    assert.equal(rec.stdout.trim(), '1', rec.stderr);
    assert.deepEqual(markers(state), []);
    await assertGuardClosed(site!, 'the recovery');
  });
});
