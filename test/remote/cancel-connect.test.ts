/**
 * Ctrl-C while SSH connects, through the real shell on a pseudo-terminal, for the commands
 * that change something on a host or in the vault once connected: `putcrt`, `host trust
 * --replace` and `update --remote`. In host1's sshd's place stands a listener that accepts
 * and never says a word (the connect would wait 15 s for its banner); Ctrl-C during the
 * connect prints the command's one cancel line within about a second, the prompt comes
 * back, the connection is dropped, the network guard is closed, and the vault stores what
 * it stored before (update's pending password, stored before connecting, is dropped again;
 * the host keeps its old password). The same commands against the real sshd afterwards
 * still work: the cancel left nothing behind. Over several hosts, a host still connecting
 * at the Ctrl-C counts as not started, while one already connected is deployed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { pause, plain, type Home, type PtySession } from '../support/pty.js';
import { siteSkip, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { assertGuardClosed, certDir, cmd, CRT_DIR, dataDirOf, enrol, onHost, shadowAccepts, silentHost, startSuite, stopSuite, storedState } from './helpers.js';

describe('Ctrl-C while SSH connects to a host that accepts and never answers', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let ca: FixtureCa | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let reqDir: string | undefined;
  let h1: TestHost;
  let h2: TestHost;

  before(async () => {
    ({ site, ca, home, reqDir, sh } = await startSuite(2));
    [h1, h2] = site.hosts as [TestHost, TestHost];
    await enrol(sh, site, h1, ca, reqDir);
    await enrol(sh, site, h2, ca, reqDir);
  });

  after(() => stopSuite({ sh, site, home, ca, reqDir }));

  const markers = () => readdirSync(dataDirOf(home!)).filter((n) => n.startsWith('guard-open'));

  /**
   * Types `line` (answering its prompts) with the silent listener in sshd's place, sends
   * Ctrl-C once passtore is connecting, and checks the one line `expected`, the time it
   * took, the dropped connection, the guard and the stored state.
   */
  async function cancelWhileConnecting(t: { diagnostic: (m: string) => void }, line: string, expected: string, answers: string[] = [], options: { many?: boolean; waitFor?: RegExp } = {}): Promise<string> {
    const silent = await silentHost(site!, h1);
    try {
      const stored = storedState(home!);
      const start = sh!.mark;
      sh!.line(line);
      let from = start + line.length;
      for (const a of answers) {
        await sh!.expect(/(: |\[y\/N\] )$/, { from });
        await pause(30);
        from = sh!.mark;
        sh!.line(a);
      }
      assert.ok(await silent.seen('open', 10_000, 20), `passtore is connecting; screen:\n${plain(sh!.transcript).slice(start)}`);
      if (options.waitFor) await sh!.expect(options.waitFor, { from, timeoutMs: 30_000 });
      await pause(300);
      const sent = Date.now();
      sh!.write('\x03');
      const end = await sh!.expect(new RegExp(`${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`), { from, timeoutMs: 20_000 });
      const took = Date.now() - sent;
      await sh!.expect(/^passtore> $/, { from: end });
      t.diagnostic(`${line}: the cancel line ${took} ms after Ctrl-C`);
      assert.ok(took < 1_500, `the cancel line came ${took} ms after Ctrl-C (not at the SSH timeout)`);
      const out = plain(sh!.transcript).slice(from);
      // A command over several hosts shows its table first; the cancel line is still the last.
      const lines = out.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('passtore>'));
      if (options.many) assert.equal(lines.at(-1), expected, out);
      else assert.deepEqual(lines, [expected], `one line:\n${out}`);
      assert.ok(await silent.seen('close', 5_000), 'passtore dropped the connection');
      await assertGuardClosed(site!, `${line} cancelled while connecting`);
      assert.deepEqual(markers(), [], 'no guard marker is left');
      if (!options.many) assert.equal(storedState(home!), stored, 'the vault stores what it stored before');
      return out;
    } finally {
      await silent.stop();
    }
  }

  test('putcrt: "putcrt: cancelled; nothing deployed" at once; nothing deployed, nothing stored; a putcrt after it deploys', async (t) => {
    await cancelWhileConnecting(t, 'putcrt host1', 'putcrt: cancelled; nothing deployed');
    assert.equal((await certDir(site!, h1)).has('hostcert.pem'), false, 'nothing was deployed');
    const audit = await cmd(sh!, 'audit --last 2');
    assert.match(audit, /deploy +\S*host1\S* +failed: host1\S*: cancelled while connecting/, audit);
    assert.match(audit, /putcrt +\S*host1\S* +failed: cancelled/, audit);
    const again = await cmd(sh!, 'putcrt host1');
    assert.match(again, /deployed to \/etc\/grid-security/, again);
    await assertGuardClosed(site!, 'the putcrt after the cancel');
  });

  test('host trust --replace: "host trust: cancelled; no key was pinned" at once; the pinned key stays', async (t) => {
    const before = await cmd(sh!, 'showcrt host1');
    await cancelWhileConnecting(t, 'host trust host1 --replace', 'host trust: cancelled; no key was pinned');
    assert.equal(await cmd(sh!, 'showcrt host1'), before, 'showcrt shows the same as before');
  });

  test('update --remote: "update: cancelled; the password is unchanged" at once; no pending password left, the host keeps the old one', async (t) => {
    const fresh = 'Fresh root password 5150!';
    await cancelWhileConnecting(t, 'update root@host1', 'update: cancelled; the password is unchanged', [h1.rootPassword, fresh, fresh]);
    const audit = await cmd(sh!, 'audit --last 3');
    assert.match(audit, /update-pending +\S*host1\S* +ok/, audit);
    assert.match(audit, /update +\S*host1\S* +failed: cancelled while connecting/, audit);
    assert.equal(await shadowAccepts(site!, h1, h1.rootPassword), true, 'the host keeps its old password');
    assert.equal(await shadowAccepts(site!, h1, fresh), false, 'the new one never reached it');
    const again = await cmd(sh!, 'reconcile');
    assert.match(again, /no interrupted password change/, again);
  });

  test('putcrt host* --jobs 2: host1 still connecting at the Ctrl-C is listed "not started (cancelled)", host2 (connected) is deployed', async (t) => {
    await onHost(site!, h2, ['rm', '-rf', CRT_DIR]);
    const out = await cancelWhileConnecting(t, 'putcrt host* --jobs 2', 'putcrt: cancelled: deployed to 1 of 2 hosts, 1 not started (listed above)', [], {
      many: true,
      // host2's deploy has ended (the progress line says so) while host1 still connects.
      waitFor: /putcrt: 1 of 2 hosts/,
    });
    assert.match(out, /host1\.site\.test\s+not started \(cancelled\)/, out);
    assert.match(out, /host2\.site\.test\s+deployed to \/etc\/grid-security/, out);
    assert.equal((await certDir(site!, h2)).has('hostcert.pem'), true, 'host2 was deployed');
  });
});
