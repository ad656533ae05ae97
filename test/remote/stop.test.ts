/**
 * Stopping a deploy over many hosts, through the real shell on a pseudo-terminal (review
 * P1): Ctrl-C during `putcrt host* --jobs 1` lets the host in flight finish, starts no
 * other, reports the rest "not started (cancelled)" and comes back to the prompt with the
 * network guard closed; SIGHUP (the terminal closed) or SIGTERM to the shell during a
 * putcrt cancels it the same way and waits for it, so that the process exits with the
 * firewall closed, the link down and no guard marker left. Each run is held at the first
 * host's deploy step (PASSTORE_HOLD_AT) while the key or the signal is sent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pause, plain, type Home, type PtySession } from '../support/pty.js';
import { siteSkip, TestSite } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { assertGuardClosed, certDir, closeShell, cmd, dataDirOf, enrol, openVault, startSuite, stopSuite } from './helpers.js';

const HOSTS = 4;

describe('stopping a putcrt over many hosts: Ctrl-C, SIGHUP, SIGTERM', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let ca: FixtureCa | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let reqDir: string | undefined;

  before(async () => {
    ({ site, ca, home, reqDir, sh } = await startSuite(HOSTS));
    for (const h of site.hosts) await enrol(sh, site, h, ca, reqDir);
    await closeShell(sh);
    sh = undefined;
  });

  after(() => stopSuite({ sh, site, home, ca, reqDir }));

  /** Which hosts hold a deployed pair now. */
  async function deployedHosts(): Promise<string[]> {
    const names: string[] = [];
    for (const h of site!.hosts) if ((await certDir(site!, h)).has('hostcert.pem')) names.push(h.name);
    return names;
  }

  /** Removes every host's pair, so that each test sees which hosts a run reached. */
  async function clearHosts(): Promise<void> {
    for (const h of site!.hosts) await site!.onHost(h, ['rm', '-rf', '/etc/grid-security']);
  }

  /** A shell held at the first host's deploy step: types `line`, resolves once it is held. */
  async function heldRun(name: string, line: string): Promise<{ release: () => void; start: number }> {
    const hold = join(home!.dir, `release-${name}`);
    // A shell a failed test left open goes first (it would hold the vault's guard).
    await closeShell(sh);
    ({ sh } = await openVault(site!, home!, { PASSTORE_HOLD_AT: 'deploy-write-cert', PASSTORE_HOLD_FILE: hold }));
    const start = sh!.mark;
    sh!.line(line);
    const deadline = Date.now() + 30_000;
    while (!existsSync(`${hold}.held`)) {
      assert.ok(Date.now() < deadline, `the first deploy reached its held step; screen:\n${plain(sh!.transcript).slice(-800)}`);
      await pause(25);
    }
    return { release: () => writeFileSync(hold, ''), start };
  }

  const markers = () => readdirSync(dataDirOf(home!)).filter((n) => n.startsWith('guard-open'));

  test('Ctrl-C during putcrt host* --jobs 1: the host in flight finishes, the rest are not started, the prompt comes back, the guard is closed', async () => {
    await clearHosts();
    const line = 'putcrt host* --jobs 1';
    const { release, start } = await heldRun('ctrl-c', line);
    // Ctrl-C while the first host's deploy stands at its step, then let it go on.
    sh!.write('\x03');
    await pause(300);
    release();
    const end = await sh!.expect(/\npasstore> $/, { from: start + line.length, timeoutMs: 60_000 });
    const out = plain(sh!.transcript).slice(start, end);

    const deployed = await deployedHosts();
    assert.equal(deployed.length, 1, `only the host in flight was deployed (${deployed.join(', ')}):\n${out}`);
    assert.match(out, new RegExp(`${deployed[0]}\\.site\\.test\\s+deployed to /etc/grid-security`), out);
    const notStarted = out.split('\n').filter((l) => /host\d\.site\.test\s+not started \(cancelled\)/.test(l));
    assert.equal(notStarted.length, HOSTS - 1, `the other hosts are reported not started:\n${out}`);
    assert.match(out, /putcrt: cancelled: deployed to 1 of 4 hosts, 3 not started \(listed above\)/);
    assert.doesNotMatch(out, /error: /, 'a cancel is not an error');
    await assertGuardClosed(site!, 'the cancelled putcrt');
    assert.deepEqual(markers(), [], 'no guard marker is left');

    // The session goes on: the next putcrt deploys the rest.
    const again = await cmd(sh!, 'putcrt host*');
    assert.match(again, /deployed to 4 hosts/, again);
    await assertGuardClosed(site!, 'the putcrt after the cancel');
    await closeShell(sh);
    sh = undefined;
  });

  for (const signal of ['SIGHUP', 'SIGTERM'] as const) {
    test(`${signal} to the shell during putcrt host* --jobs 1: the command is cancelled and waited for; the process exits with the firewall closed and no marker`, async () => {
      await clearHosts();
      const { release } = await heldRun(signal, 'putcrt host* --jobs 1');
      const left = await site!.vaultState();
      assert.equal(left.linkUp, true, 'the guard is open while the first host is deployed');
      process.kill(sh!.pid, signal);
      await pause(300);
      release();
      const status = await sh!.exited(45_000);
      assert.equal(status, signal === 'SIGHUP' ? 129 : 143, `exit status 128 + the signal's number; screen:\n${plain(sh!.transcript).slice(-800)}`);
      sh = undefined;
      await assertGuardClosed(site!, `${signal} during putcrt`);
      assert.deepEqual(markers(), [], 'no guard marker is left: the guard was closed, not left to the next start');
      const deployed = await deployedHosts();
      assert.ok(deployed.length <= 1, `no host after the one in flight was deployed (${deployed.join(', ')})`);

      // The next start finds nothing to recover.
      const opened = await openVault(site!, home!);
      sh = opened.sh;
      assert.doesNotMatch(opened.banner, /closed the network guard an earlier run left open/);
      await closeShell(sh);
      sh = undefined;
    });
  }
});
