/**
 * Ctrl-C in the real shell while an SFTP transfer from a site host is in progress
 * (`getcrt root@host:FILE`, `getkey HOST root@host:FILE`): the host's SFTP is slowed
 * (slowSftp: a file of 900 kB would take about 45 s) and Ctrl-C is pressed once part of
 * the file has arrived. Then: one line, `getcrt: cancelled; nothing stored`, within
 * moments and the prompt back; the vault's hosts, keys, certificates, requests and
 * entries as they were, the audit trail saying the command was cancelled; no SSH session
 * left on the host; the network guard closed. The same transfer at full speed stores
 * the certificate, so the cancelled one would have stored something. A Ctrl-C while the
 * host is still starting its SFTP subsystem (made to take 5 s) cancels at once too, not
 * after the start and the transfer, and so does one while SSH connects to a host that
 * accepts and never answers (not at the 15 s SSH timeout), the connection dropped. `putreq`'s upload
 * never stops midway (passtore(1)): Ctrl-C while the request is half sent lets it finish,
 * the whole request on the host and marked sent, and leaves no session either.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pause, plain, type Home, type PtySession } from '../support/pty.js';
import { siteSkip, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { assertGuardClosed, certFingerprint, cmd, dataDirOf, enrol, onHost, restoreSftp, sha256, silentHost, slowSftp, sshSessionsOn, startSuite, stopSuite, storedState } from './helpers.js';

/** Bytes the slowed SFTP passes every 0.2 s each way. */
const CHUNK = 4096;
/** Padding before the PEM block: the file is about 900 kB, under getcrt's 1 MiB limit. */
const PADDING = `# padding: text outside the PEM block, which readers pass over${'.'.repeat(60)}\n`.repeat(7200);
const EXCHANGE = '/root/exchange';
describe('Ctrl-C during an SFTP transfer from a site host', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let ca: FixtureCa | undefined;
  let home: Home | undefined;
  let sh: PtySession | undefined;
  let reqDir: string | undefined;
  let h1: TestHost;
  /** The certificate of host1's second request: getcrt would store it. */
  let next: string;

  before(async () => {
    ({ site, ca, home, reqDir, sh } = await startSuite(1));
    [h1] = site.hosts as [TestHost];
    await enrol(sh, site, h1, ca, reqDir);
    // A second request for host1 (a new key, waiting), its certificate and a key of its own
    // for getkey, both padded, placed on the host.
    assert.match(await cmd(sh, `crtreq ${h1.name} --out ${reqDir}`), new RegExp(h1.fqdn));
    next = await ca.sign(join(reqDir, `${h1.fqdn}.req`), { out: ca.path('host1-next.crt') });
    const key = await ca.genKey('ec-p256', ca.path('host1-other.key'));
    await onHost(site, h1, ['mkdir', '-p', EXCHANGE]);
    await onHost(site, h1, ['sh', '-c', `cat > ${EXCHANGE}/host1.crt`], PADDING + readFileSync(next, 'utf8'));
    await onHost(site, h1, ['sh', '-c', `cat > ${EXCHANGE}/host1.key`], PADDING + readFileSync(key, 'utf8'));
  });

  after(() => stopSuite({ sh, site, home, ca, reqDir }));

  /** The last audit records as `audit` shows them: seq, and action to outcome. */
  async function auditRecords(): Promise<Array<{ seq: number; text: string }>> {
    const out = await cmd(sh!, 'audit --last 5');
    return [...out.matchAll(/^(\d+) +\S+ \S+ +\S+ +(.*?)\s*$/gm)].map((m) => ({ seq: Number(m[1]), text: m[2]! }));
  }

  for (const [label, line] of [
    ['getcrt', `getcrt root@host1:${EXCHANGE}/host1.crt`],
    ['getkey', `getkey host1 root@host1:${EXCHANGE}/host1.key`],
  ] as const) {
    test(`${label}: Ctrl-C mid-transfer prints one line and returns to the prompt; nothing stored, no session left, the guard closed`, async (t) => {
      const progress = await slowSftp(site!, h1, CHUNK);
      try {
        const stored = storedState(home!);
        const certBefore = /SHA-256: +([0-9a-f]{64})/.exec(await cmd(sh!, 'showcrt host1'))?.[1];
        assert.ok(certBefore, 'host1 has a certificate before');
        assert.deepEqual(sshSessionsOn(site!, h1), [], 'no SSH session on the host before');
        const lastSeq = Math.max(...(await auditRecords()).map((r) => r.seq));

        const start = sh!.mark;
        sh!.line(line);
        // The file's bytes are on their way: well past the SFTP start, far from the end.
        const deadline = Date.now() + 30_000;
        while (progress().out < 4 * CHUNK && Date.now() < deadline) await pause(50);
        const passed = progress().out;
        assert.ok(passed >= 4 * CHUNK && passed < PADDING.length / 2, `the transfer is in progress at the Ctrl-C (${passed} bytes passed)`);
        assert.ok(sshSessionsOn(site!, h1).some((p) => /sftp-server/.test(p)), 'the host serves the transfer');

        const sent = Date.now();
        sh!.write('\x03');
        const end = await sh!.expect(new RegExp(`${label}: cancelled; nothing stored\\n`), { from: start, timeoutMs: 10_000 });
        const took = Date.now() - sent;
        await sh!.expect(/^passtore> $/, { from: end });
        assert.ok(took < 3_000, `the cancel line came ${took} ms after Ctrl-C`);
        t.diagnostic(`Ctrl-C after ${passed} of ${PADDING.length} bytes; the cancel line ${took} ms later`);
        const out = plain(sh!.transcript).slice(start);
        assert.ok(!/error:|To exit, press|stored the|imported/.test(out), `one line, no error, no REPL hint, nothing stored:\n${out}`);
        assert.deepEqual(out.split('\n').map((l) => l.trim()).filter((l) => l && l !== line && !l.startsWith('passtore>')), [`${label}: cancelled; nothing stored`], `one line:\n${out}`);
        assert.equal(sh!.exitCode, undefined, 'the shell is still running');

        // The guard is closed and the host holds no session (waited for: sshd ends its
        // processes once the connection has gone).
        await assertGuardClosed(site!, `a cancelled ${label}`);
        const gone = Date.now() + 5_000;
        while (sshSessionsOn(site!, h1).length > 0 && Date.now() < gone) await pause(100);
        assert.deepEqual(sshSessionsOn(site!, h1), [], 'no SSH session left on the host');
        const stopped = progress().out;
        await pause(600);
        assert.equal(progress().out, stopped, 'the transfer stopped');

        assert.equal(storedState(home!), stored, 'the vault stores what it stored before');
        assert.equal(/SHA-256: +([0-9a-f]{64})/.exec(await cmd(sh!, 'showcrt host1'))?.[1], certBefore, "host1's certificate is unchanged");
        // One record since the Ctrl-C: the command, cancelled.
        const since = (await auditRecords()).filter((r) => r.seq > lastSeq).map((r) => r.text);
        assert.equal(since.length, 1, `one audit record since:\n${since.join('\n')}`);
        assert.match(since[0]!, new RegExp(`^${label} +\\S*host1\\S* +failed: cancelled$`), 'the audit trail says the command was cancelled');
      } finally {
        await restoreSftp(site!, h1);
      }
    });
  }

  test('getcrt: Ctrl-C while the host is still starting its SFTP, then a slow file: cancelled at once, not after the transfer', async (t) => {
    const progress = await slowSftp(site!, h1, CHUNK, { startDelayS: 5 });
    try {
      const stored = storedState(home!);
      const line = `getcrt root@host1:${EXCHANGE}/host1.crt`;
      const start = sh!.mark;
      sh!.line(line);
      // The subsystem has been asked for (its start-up sleep runs), no SFTP byte has passed.
      const deadline = Date.now() + 30_000;
      while (!sshSessionsOn(site!, h1).some((p) => /\bsleep 5\b/.test(p)) && Date.now() < deadline) await pause(20);
      assert.ok(sshSessionsOn(site!, h1).some((p) => /\bsleep 5\b/.test(p)), 'the host is starting its SFTP');
      assert.equal(progress().out, 0, 'no SFTP answer yet');
      const sent = Date.now();
      sh!.write('\x03');
      const end = await sh!.expect(/getcrt: cancelled; nothing stored\n/, { from: start, timeoutMs: 15_000 });
      const took = Date.now() - sent;
      await sh!.expect(/^passtore> $/, { from: end });
      t.diagnostic(`the cancel line ${took} ms after Ctrl-C; ${progress().out} bytes had passed`);
      // The SFTP start takes 5 s, the file about 45 s more: the cancel waits for neither.
      assert.ok(took < 3_000, `the cancel line came ${took} ms after Ctrl-C (not after the SFTP start, nor the transfer)`);
      assert.ok(progress().out < PADDING.length / 2, `the file was not transferred (${progress().out} bytes passed)`);
      assert.equal(storedState(home!), stored, 'the vault stores what it stored before');
      await assertGuardClosed(site!, 'a getcrt cancelled at the SFTP start');
      // sshd ends the connection's own processes at once, but leaves the subsystem's
      // wrapper to end by itself: it sleeps out its 5 s, then its loops find their pipes
      // closed. Nothing of it may be left after that.
      const closed = Date.now() + 5_000;
      while (sshSessionsOn(site!, h1).some((p) => !/slow-sftp/.test(p)) && Date.now() < closed) await pause(100);
      assert.deepEqual(sshSessionsOn(site!, h1).filter((p) => !/slow-sftp/.test(p)), [], 'no sshd process of the connection left on the host');
      const gone = Date.now() + 12_000;
      while (sshSessionsOn(site!, h1).length > 0 && Date.now() < gone) await pause(100);
      assert.deepEqual(sshSessionsOn(site!, h1), [], 'no SSH session left on the host');
    } finally {
      await restoreSftp(site!, h1);
    }
  });

  test('getcrt: Ctrl-C while SSH connects to a host that accepts and never answers: cancelled at once, the connection dropped', async (t) => {
    // In sshd's place, a listener that accepts and never says a word.
    const silent = await silentHost(site!, h1);
    try {
      const stored = storedState(home!);
      const lastSeq = Math.max(...(await auditRecords()).map((r) => r.seq));
      const line = `getcrt root@host1:${EXCHANGE}/host1.crt`;
      const start = sh!.mark;
      sh!.line(line);
      assert.ok(await silent.seen('open', 10_000, 20), 'passtore is connecting');
      await pause(300);
      const sent = Date.now();
      sh!.write('\x03');
      const end = await sh!.expect(/getcrt: cancelled; nothing stored\n/, { from: start, timeoutMs: 20_000 });
      const took = Date.now() - sent;
      await sh!.expect(/^passtore> $/, { from: end });
      t.diagnostic(`the cancel line ${took} ms after Ctrl-C`);
      assert.ok(took < 3_000, `the cancel line came ${took} ms after Ctrl-C (not at the SSH timeout)`);
      const out = plain(sh!.transcript).slice(start);
      assert.deepEqual(out.split('\n').map((l) => l.trim()).filter((l) => l && l !== line && !l.startsWith('passtore>')), ['getcrt: cancelled; nothing stored'], `one line:\n${out}`);
      assert.ok(await silent.seen('close', 5_000), 'passtore dropped the connection');
      await assertGuardClosed(site!, 'a getcrt cancelled while connecting');
      assert.equal(storedState(home!), stored, 'the vault stores what it stored before');
      const since = (await auditRecords()).filter((r) => r.seq > lastSeq).map((r) => r.text);
      assert.equal(since.length, 1, `one audit record since:\n${since.join('\n')}`);
      assert.match(since[0]!, /^getcrt +\S*host1\S* +failed: cancelled$/);
    } finally {
      await silent.stop();
    }
  });

  test('putreq: Ctrl-C mid-upload (a command that never stops midway) lets it run to its end: the whole request on the host, marked sent, no session left, the guard closed', async (t) => {
    // The request's bytes reach the host 64 at a time, every 0.2 s: about 3 s for its PEM.
    const progress = await slowSftp(site!, h1, 64);
    try {
      await onHost(site!, h1, ['rm', '-f', `${EXCHANGE}/${h1.fqdn}.req`]);
      const lastSeq = Math.max(...(await auditRecords()).map((r) => r.seq));
      const line = `putreq host1 root@host1:${EXCHANGE}`;
      const start = sh!.mark;
      sh!.line(line);
      const deadline = Date.now() + 30_000;
      while (progress().in < 512 && Date.now() < deadline) await pause(50);
      const passed = progress().in;
      const pem = readFileSync(join(reqDir!, `${h1.fqdn}.req`), 'utf8');
      assert.ok(passed >= 512 && passed < pem.length, `the upload is in progress at the Ctrl-C (${passed} bytes sent)`);
      sh!.write('\x03');
      const end = await sh!.expect(/\npasstore> $/, { from: start + line.length, timeoutMs: 30_000 });
      const out = plain(sh!.transcript).slice(start, end);
      t.diagnostic(`Ctrl-C after ${passed} bytes sent of a ${pem.length}-byte request`);
      assert.deepEqual(
        out.split('\n').map((l) => l.trim()).filter((l) => l && l !== line && !l.startsWith('passtore>')),
        [`copied the request of ${h1.fqdn} to root@${h1.fqdn}:${EXCHANGE}/${h1.fqdn}.req`],
        'the upload ran to its end, and said so on one line',
      );
      assert.equal(sha256(await onHost(site!, h1, ['cat', `${EXCHANGE}/${h1.fqdn}.req`])), sha256(pem), 'the host holds the whole request');
      const db = new Database(join(dataDirOf(home!), 'vault.db'), { readonly: true });
      try {
        const states = db.prepare('SELECT r.state FROM cert_requests r JOIN hosts h ON h.id = r.host_id WHERE h.fqdn = ? AND r.pem = ?').all(h1.fqdn, pem) as Array<{ state: string }>;
        assert.deepEqual(states, [{ state: 'sent' }], 'the request is marked sent');
      } finally {
        db.close();
      }
      const since = (await auditRecords()).filter((r) => r.seq > lastSeq).map((r) => r.text);
      assert.equal(since.length, 1, `one audit record since:\n${since.join('\n')}`);
      assert.match(since[0]!, new RegExp(`^putreq +${h1.fqdn} +ok: root@`));
      await assertGuardClosed(site!, 'putreq');
      const gone = Date.now() + 5_000;
      while (sshSessionsOn(site!, h1).length > 0 && Date.now() < gone) await pause(100);
      assert.deepEqual(sshSessionsOn(site!, h1), [], 'no SSH session left on the host');
    } finally {
      await restoreSftp(site!, h1);
    }
  });

  test('the same getcrt at full speed stores the certificate (what the cancel kept out)', async () => {
    const out = await cmd(sh!, `getcrt root@host1:${EXCHANGE}/host1.crt`);
    assert.match(out, /stored the certificate for host1\.site\.test/);
    await assertGuardClosed(site!, 'getcrt');
    assert.equal(/SHA-256: +([0-9a-f]{64})/.exec(await cmd(sh!, 'showcrt host1'))?.[1], await certFingerprint(next));
  });
});
