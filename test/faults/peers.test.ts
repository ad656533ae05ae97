/**
 * Peers that drop the connection: the real passtore-cron talks to a real SMTP receiver
 * (smtp-server, test/cron/servers.ts) and a real IMAP server (dovecot, test/cron/dovecot.ts)
 * through proxy.ts, which cuts the connection at a chosen point of the conversation.
 *
 * SMTP (`passtore-cron run`, the request and reminder mails of two expiring certificates):
 * - cut mid-DATA, with a FIN or a TCP reset: the run reports each message "stays queued"
 *   (status 1), the receiver has nothing, and the next run sends every message exactly once;
 * - cut right after the end of DATA, before the server's answer: the server may have taken
 *   the message, passtore cannot know, so it is sent again with the same Message-ID: at
 *   least once, at most twice.
 *
 * IMAP (`passtore-cron fetch`, the CA's mail holding the issued certificate):
 * - cut mid-FETCH of the message body (FIN), or reset while the FETCH is under way: the
 *   run stores nothing and leaves the mail unread, and the next fetch stores the
 *   certificate once; the cut run fails with one line naming the fetcher (status 1),
 *   with no trace on stderr;
 * - cut while the processed mail is being marked \Seen: the certificate was stored; the
 *   next fetch reads the mail again, stores nothing twice, and marks it.
 *
 * HTTP (`passtore-cron fetch`, the CA's download point, `[ca] http_url`): cut after the
 * response headers: nothing stored, the next fetch stores the certificate once; the cut
 * fetch fails at once with one line (status 1), neither hanging nor ending silently.
 *
 * SSH peers dropping SFTP sessions and connections mid-transfer are in test/remote/deploy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ImapFlow } from 'imapflow';
import { ADMIN, byMessageId, certifyHost, createCronVault, outbox, runCron, show, writeConfig, type CronResult as CronResult2, type CronVault } from '../cron/helpers.js';
import { startSmtp, type ReceivedMail } from '../cron/servers.js';
import { dovecotSkip, TestDovecot } from '../cron/dovecot.js';
import { expiringVault, type CronResult, type ExpiringVault } from '../cron/fetch-vault.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { DropProxy, type DropRule } from './proxy.js';
import { endOfFile, fq, inspect, rootSpec, Tally, type Expectation } from './harness.js';

const tally = new Tally('peers.test');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let ca: FixtureCa;

before(async () => {
  ca = await FixtureCa.create();
  cleanups.push(() => ca.remove());
});
after(() => endOfFile(tally, cleanups));

const PW = (n: number) => `Peer-Pw-${n}-h2`;

// ---------------------------------------------------------------------------------------

describe('the SMTP receiver drops the connection', () => {
  async function setup(rule: DropRule) {
    const mails: ReceivedMail[] = [];
    const smtp = await startSmtp({ host: '127.0.0.1', onMail: (m) => mails.push(m) });
    cleanups.push(() => smtp.close());
    const proxy = await DropProxy.start({ host: '127.0.0.1', port: smtp.port }, rule);
    cleanups.push(() => proxy.close());
    const cv = await createCronVault({ domain: 'example.org', hosts: [{ name: 'ui-01', rootPassword: PW(1) }, { name: 'ui-02', rootPassword: PW(2) }] });
    cleanups.push(() => rmSync(cv.dir, { recursive: true, force: true }));
    await certifyHost(cv, ca, 'ui-01', 10);
    await certifyHost(cv, ca, 'ui-02', 10);
    writeConfig(cv, { smtp: { host: '127.0.0.1', port: proxy.port, from: 'passtore@example.org', insecure: 'yes' } });
    return { cv, mails, proxy };
  }
  const run = (cv: CronVault) => runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome, timeoutMs: 60_000 });
  const want: Expectation = { passwords: { [rootSpec('ui-01')]: [PW(1)], [rootSpec('ui-02')]: [PW(2)] } };

  async function settled(cv: CronVault, mails: ReceivedMail[]): Promise<Map<string, number>> {
    const seen = byMessageId(mails);
    const rows = outbox(cv);
    tally.mailsChecked += rows.length;
    const lost = rows.filter((m) => m.state !== 'sent' || ![...seen.keys()].some((id) => id.startsWith(`<passtore-outbox-${m.id}-`)));
    tally.mailsLost += lost.length;
    assert.deepEqual(lost.map((m) => m.subject), [], 'every message sent and received');
    assert.ok(mails.every((m) => m.to.includes(ADMIN)));
    const i = await inspect({ db: `sqlite:${cv.dbPath}`, passwordFile: undefined }, want);
    assert.deepEqual(tally.record(i), [], 'the vault is sound');
    assert.equal(i.counts.openRequests, 2, 'one open request per expiring certificate');
    return seen;
  }

  for (const how of ['end', 'reset'] as const) {
    test(`cut mid-DATA (${how === 'end' ? 'FIN' : 'TCP reset'}): the mail stays queued, and goes exactly once at the next run`, async () => {
      const f = tally.fault(`SMTP receiver cut mid-DATA (${how === 'end' ? 'FIN' : 'TCP reset'})`);
      try {
        const { cv, mails, proxy } = await setup({ direction: 'up', after: /\r\nSubject: /, bytes: 12, how });
        const first = await run(cv);
        assert.equal(proxy.drops, 1, 'the connection was cut');
        assert.equal(first.code, 1, show(first));
        const failures = first.lines.filter((l) => l.startsWith('FAILED: '));
        assert.equal(failures.length, 4, show(first));
        assert.ok(failures.every((l) => /^FAILED: mail \d+ "[^"]+" not sent \(.+\); it stays queued$/.test(l)), show(first));
        assert.equal(first.stderr, '', 'no trace on stderr');
        assert.equal(mails.length, 0, 'the receiver took no cut message');
        assert.ok(outbox(cv).every((m) => m.state === 'queued'));

        const second = await run(cv);
        assert.equal(second.code, 0, show(second));
        const seen = await settled(cv, mails);
        assert.ok([...seen.values()].every((n) => n === 1), 'each message exactly once');
        assert.equal(seen.size, 4);
      } catch (e) {
        f.fail((e as Error).message);
        throw e;
      } finally {
        f.done();
      }
    });
  }

  test('cut after the end of DATA, before the answer: sent again with the same Message-ID (at least once, at most twice)', async () => {
    const f = tally.fault('SMTP receiver cut after the end of DATA, before its answer');
    try {
      const { cv, mails, proxy } = await setup({ direction: 'up', after: /\r\n\.\r\n/, how: 'end' });
      const first = await run(cv);
      assert.equal(proxy.drops, 1);
      assert.equal(first.code, 1, show(first));
      assert.ok(mails.length <= 1, 'at most the message whose answer was lost');
      assert.ok(outbox(cv).every((m) => m.state === 'queued'), 'passtore could not know: everything stays queued');
      const second = await run(cv);
      assert.equal(second.code, 0, show(second));
      const seen = await settled(cv, mails);
      const twice = [...seen].filter(([, n]) => n === 2).map(([id]) => id);
      assert.ok([...seen.values()].every((n) => n <= 2));
      assert.deepEqual(twice, mails.length > 4 ? [mails[0]!.messageId] : [], 'only the message whose answer was lost went twice');
      tally.duplicateMails += twice.length;
    } catch (e) {
      f.fail((e as Error).message);
      throw e;
    } finally {
      f.done();
    }
  });
});

// ---------------------------------------------------------------------------------------

describe("the CA's HTTP download point drops the connection mid-body", () => {
  let v: ExpiringVault;
  let server: Server;
  let proxy: DropProxy;
  const www = new Map<string, string>();
  let first: { finished: boolean; ms: number; r?: CronResult2 } | undefined;
  let fingerprint = '';

  before(async () => {
    server = createServer((req, res) => {
      const body = www.get(req.url ?? '');
      if (!body) {
        res.writeHead(404).end('not issued yet\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-pem-file', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    proxy = await DropProxy.start({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    cleanups.push(() => proxy.close());
    v = await expiringVault(ca, ['ui-01'], 10);
    cleanups.push(() => v.close());
    v.writeConfig(['[ca]', `http_url = http://127.0.0.1:${proxy.port}/certs/{fqdn}.pem`, 'insecure = yes', `trust = ${ca.caCert}`]);
  });

  test('nothing stored from the cut download; the next fetch stores the certificate once', async () => {
    const f = tally.fault("the CA's HTTP server cut mid-body");
    try {
      assert.equal(await v.tv.run('crtreq ui-01 --type ec-p256'), 0, v.tv.io.text());
      const [req] = await v.tv.session.store.openRequests(fq('ui-01'));
      const reqFile = join(v.work, 'ui-01.req');
      writeFileSync(reqFile, req!.pem);
      const cert = await ca.sign(reqFile, { days: 90 });
      fingerprint = await ca.fingerprint(cert);
      www.set(`/certs/${fq('ui-01')}.pem`, readFileSync(cert, 'utf8'));
      proxy.rule = { direction: 'down', after: /\r\n\r\n/, bytes: 100, how: 'end' };
      const t = Date.now();
      // The fetcher's own limit is 20 s without an answer; 25 s tells a hang from a slow failure.
      first = await runCron(['--config', v.configFile, 'fetch'], { dataHome: v.dataHome, timeoutMs: 25_000 }).then(
        (r) => ({ finished: true, ms: Date.now() - t, r }),
        () => ({ finished: false, ms: Date.now() - t }),
      );
      assert.equal(proxy.drops, 1, 'the connection was cut');
      const certs = () => v.certRows().then((rows) => rows.filter(([, fp]) => fp === fingerprint).length);
      assert.equal(await certs(), 0, 'nothing stored from a cut download');
      assert.deepEqual(tally.record(await inspect({ db: v.tv.config.db, passwordFile: undefined })), [], 'the vault is sound');

      proxy.rule = undefined;
      const second = await runCron(['--config', v.configFile, 'fetch'], { dataHome: v.dataHome, timeoutMs: 25_000 });
      assert.ok(second.lines.some((l) => l.startsWith(`stored the certificate for ${fq('ui-01')} `)), show(second));
      assert.equal(await certs(), 1, 'stored once');
      assert.deepEqual(tally.record(await inspect({ db: v.tv.config.db, passwordFile: undefined })), [], 'the vault is sound');
      if (!first.finished) f.fail(`passtore-cron fetch hung (killed after ${first.ms} ms)`);
      else if (first.r!.code === 0 && first.r!.stdout === '') f.fail('passtore-cron fetch ended with status 0 and printed nothing: the cut was never reported');
    } catch (e) {
      f.fail((e as Error).message);
      throw e;
    } finally {
      f.done();
    }
  });

  test('the cut download fails at once with one clear line, status 1', () => {
    assert.ok(first, 'the drop test ran');
    assert.ok(first.finished, `passtore-cron fetch finished (it was killed after ${first.ms} ms)`);
    const r = first.r!;
    assert.equal(r.code, 1, show(r));
    const own = r.lines.filter((l) => l.startsWith('FAILED: ') && !/^FAILED: deploy /.test(l));
    assert.equal(own.length, 1, show(r));
    assert.match(own[0]!, /^FAILED: fetch http: /);
  });
});

// ---------------------------------------------------------------------------------------

const skipImap = dovecotSkip();

describe('the IMAP server drops the connection', { skip: skipImap }, () => {
  let dovecot: TestDovecot;
  let proxy: DropProxy;
  let v: ExpiringVault;
  let n = 0;

  before(async () => {
    dovecot = await TestDovecot.start();
    cleanups.push(() => dovecot.stop());
    proxy = await DropProxy.start({ host: '127.0.0.1', port: dovecot.port });
    cleanups.push(() => proxy.close());
    v = await expiringVault(ca, ['ui-01', 'ui-02', 'ui-03'], 10);
    cleanups.push(() => v.close());
    const passwordFile = join(v.work, 'imap.password');
    writeFileSync(passwordFile, `${dovecot.password}\n`, { mode: 0o600 });
    v.writeConfig(['[ca]', `imap_url = imap://${dovecot.user}@127.0.0.1:${proxy.port}/INBOX`, `imap_password_file = ${passwordFile}`, 'insecure = yes', `trust = ${ca.caCert}`]);
  });

  /** A new request for `host`, signed by the CA and mailed into the INBOX; returns the certificate's fingerprint. */
  async function issueByMail(host: string): Promise<{ subject: string; fingerprint: string }> {
    assert.equal(await v.tv.run(`crtreq ${host} --type ec-p256`), 0, v.tv.io.text());
    const [req] = await v.tv.session.store.openRequests(fq(host));
    const reqFile = join(v.work, `${host}-${++n}.req`);
    writeFileSync(reqFile, req!.pem);
    const cert = await ca.sign(reqFile, { days: 90 });
    const subject = `certificate ${n} for ${fq(host)}`;
    dovecot.deliver(['From: Test CA <ca@ca.example.net>', 'To: passtore@example.org', `Subject: ${subject}`, `Message-ID: <issued-${n}@ca.example.net>`, 'MIME-Version: 1.0', 'Content-Type: text/plain', '', 'Your certificate:', readFileSync(cert, 'utf8'), ''].join('\r\n'));
    return { subject, fingerprint: (await ca.fingerprint(cert)).toLowerCase() };
  }

  async function seenFlags(): Promise<Map<string, boolean>> {
    const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user: dovecot.user, pass: dovecot.password }, logger: false } as ConstructorParameters<typeof ImapFlow>[0]);
    await client.connect();
    const out = new Map<string, boolean>();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        for (const m of await client.fetchAll('1:*', { envelope: true, flags: true })) out.set(m.envelope?.subject ?? '', m.flags?.has('\\Seen') ?? false);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
    return out;
  }

  async function stored(fingerprint: string): Promise<number> {
    return (await v.certRows()).filter(([, fp]) => fp.toLowerCase() === fingerprint.replace(/:/g, '').toLowerCase()).length;
  }

  /** The run's own failures, without the deploys that fail here by design (no pinned host key). */
  const ownFailures = (r: CronResult) => r.failures.filter((l) => !/^FAILED: deploy /.test(l));

  async function sound(): Promise<void> {
    const i = await inspect({ db: v.tv.config.db, passwordFile: undefined });
    assert.deepEqual(tally.record(i), [], 'the vault is sound');
  }

  /** What each drop left, for the report test after it. */
  const outcomes = new Map<string, CronResult>();

  /**
   * FIN: cut in the middle of the message body the FETCH brings; TCP reset: as soon as
   * passtore sent its FETCH (while it waits for the answer; a reset in the middle of the
   * body does the same most of the time, depending on timing).
   */
  const cuts = {
    end: { label: 'FIN mid-FETCH of the message body', rule: { direction: 'down', after: /BODY\[\] \{\d+\}\r\n/, bytes: 60, how: 'end' } as DropRule, host: 'ui-01' },
    reset: { label: 'TCP reset while the FETCH is under way', rule: { direction: 'up', after: / FETCH /, how: 'reset' } as DropRule, host: 'ui-02' },
  };

  for (const how of ['end', 'reset'] as const) {
    const cut = cuts[how];
    test(`${cut.label}: nothing stored, the mail stays unread, the next fetch stores the certificate once`, async () => {
      const f = tally.fault(`IMAP server: ${cut.label}`);
      try {
        const { subject, fingerprint } = await issueByMail(cut.host);
        proxy.rule = cut.rule;
        const drops = proxy.drops;
        const t = Date.now();
        const first = await v.cron('fetch');
        outcomes.set(how, first);
        assert.equal(proxy.drops, drops + 1, 'the connection was cut');
        assert.ok(Date.now() - t < 30_000, 'no hang');
        assert.equal(await stored(fingerprint), 0, 'nothing stored from a cut fetch');
        assert.equal((await seenFlags()).get(subject), false, 'the mail stays unread');
        await sound();

        proxy.rule = undefined;
        const second = await v.cron('fetch');
        assert.deepEqual(ownFailures(second), [], second.stdout);
        assert.ok(second.lines.some((l) => l.startsWith(`stored the certificate for ${fq(cut.host)} `)), second.stdout);
        assert.equal(await stored(fingerprint), 1, 'stored once');
        assert.equal((await seenFlags()).get(subject), true, 'and the mail marked read');
        await sound();
        if (first.stderr !== '') f.fail('passtore-cron crashed');
      } catch (e) {
        f.fail((e as Error).message);
        throw e;
      } finally {
        f.done();
      }
    });

    test(`${cut.label}: the fetch fails with one clear line, status 1, no crash`, () => {
      const r = outcomes.get(how);
      assert.ok(r, 'the drop test ran');
      assert.equal(r.stderr, '', `no trace on stderr:\n${r.stderr}`);
      assert.equal(r.status, 1, `status 1: ${r.stdout}`);
      const own = ownFailures(r);
      assert.equal(own.length, 1, `one failure line: ${r.stdout}`);
      assert.match(own[0]!, /^FAILED: fetch imap: /);
      assert.doesNotMatch(own[0]!, /internal/, `a clear line: ${own[0]}`);
    });
  }

  test('cut while the mail is being marked read: the certificate was stored once; the next fetch reads it again, stores nothing twice, marks it', async () => {
    const f = tally.fault('IMAP server cut while the processed mail is being marked read');
    try {
      const { subject, fingerprint } = await issueByMail('ui-03');
      proxy.rule = { direction: 'up', after: /UID STORE /, how: 'end' };
      const drops = proxy.drops;
      const first = await v.cron('fetch');
      assert.equal(proxy.drops, drops + 1, 'the connection was cut');
      assert.equal(first.status, 1, first.stdout + first.stderr);
      assert.ok(first.lines.some((l) => l.startsWith(`stored the certificate for ${fq('ui-03')} `)), first.stdout);
      assert.equal(await stored(fingerprint), 1);
      assert.equal((await seenFlags()).get(subject), false, 'not marked: the cut came first');
      await sound();

      // fetch reads the mailbox only while a request is open: open one (ui-01's).
      assert.equal(await v.tv.run('crtreq ui-01 --type ec-p256'), 0, v.tv.io.text());
      proxy.rule = undefined;
      const second = await v.cron('fetch');
      assert.deepEqual(ownFailures(second), [], second.stdout);
      assert.equal(await stored(fingerprint), 1, 'not stored twice');
      assert.equal((await seenFlags()).get(subject), true, 'now marked read');
      const third = await v.cron('fetch');
      assert.ok(!third.lines.some((l) => l.startsWith('stored the certificate')), third.stdout);
      await sound();
    } catch (e) {
      f.fail((e as Error).message);
      throw e;
    } finally {
      f.done();
    }
  });
});


