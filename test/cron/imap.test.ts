/**
 * The `imap` CA fetcher end to end, with real components only: a real vault on SQLite,
 * the built passtore-cron run as a child process, a real dovecot serving a Maildir over
 * IMAP, an smtp-server receiver in this process for passtore's outgoing mail, and the
 * fixture CA (openssl) standing for the site's CA.
 *
 * Shown here:
 * - `passtore-cron renew` makes a new key and request for each certificate within
 *   crt_ttl days of expiry and queues the request mail; `send` delivers it to [smtp]; the
 *   request travels as the mail's .req attachment (openssl verifies it);
 * - the CA signs it and mails the certificate back: the mail is written into the dovecot
 *   Maildir, once as a PEM attachment (ui-01), once inline in the text (ui-02), once as a
 *   DER .crt attachment (ui-03, later);
 * - `passtore-cron fetch` stores each certificate whose key is pending (the new serial is
 *   the host's current certificate, paired with the new key); what is asserted about the
 *   deploy: the hosts have no pinned SSH host key, so each deploy fails before any
 *   connection, one `FAILED: deploy FQDN: ...` line per stored certificate, exit 1;
 * - each processed mail is then \Seen (asked over IMAP), and the next fetch reads no
 *   message body again (dovecot's logout line: body_count=0) and stores nothing;
 * - a certificate for a key the vault does not hold, and one for a key that waits for no
 *   certificate (the host's previous key), are refused, one FAILED line each, exit 1,
 *   nothing stored; those mails are \Seen too and not refused again at the next fetch;
 * - the refusals and the failed deploys are reported by mail.
 *
 * Later fetches retry the deploys that failed (`FAILED: deploy FQDN (retried): ...`, as
 * the hosts stay unreachable here); the other tests set such lines aside, and the last
 * test asserts them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { FixtureCa, opensslOk } from '../x509/fixture-ca.js';
import { dovecotSkip, TestDovecot } from './dovecot.js';
import { expiringVault, fq, freePort, shown, spkiSha256OfCert, spkiSha256OfRequest, type CronResult, type ExpiringVault } from './fetch-vault.js';

const skip = dovecotSkip();

/** A mail from the CA, CRLF-terminated RFC 5322 with MIME. */
function caMail(subject: string, text: string, attachment?: { filename: string; contentType: string; content: Buffer }): string {
  const head = [
    'From: Test CA <ca@ca.example.net>',
    'To: passtore@example.org',
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@ca.example.net>`,
    'MIME-Version: 1.0',
  ];
  if (!attachment) return [...head, 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', '', text, ''].join('\r\n');
  const b = `=_passtore_test_${Math.random().toString(36).slice(2)}`;
  return [
    ...head,
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    text,
    `--${b}`,
    `Content-Type: ${attachment.contentType}; name="${attachment.filename}"`,
    `Content-Disposition: attachment; filename="${attachment.filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    ...(attachment.content.toString('base64').match(/.{1,76}/g) ?? []),
    `--${b}--`,
    '',
  ].join('\r\n');
}

describe('passtore-cron with the imap fetcher (dovecot)', { skip }, () => {
  let ca: FixtureCa;
  let dovecot: TestDovecot;
  let smtp: SMTPServer | undefined;
  let v: ExpiringVault;
  const received: ParsedMail[] = [];
  /** The certificate files the CA issued for the renewal requests, by host. */
  const issued = new Map<string, string>();
  const hosts = ['ui-01', 'ui-02', 'ui-03'];

  before(async () => {
    ca = await FixtureCa.create();
    dovecot = await TestDovecot.start();
    const smtpPort = await freePort();
    smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      authOptional: true,
      logger: false,
      onData(stream, _session, callback) {
        simpleParser(stream).then(
          (m) => {
            received.push(m);
            callback();
          },
          (e: Error) => callback(e),
        );
      },
    });
    await new Promise<void>((resolve, reject) => {
      smtp!.once('error', reject);
      smtp!.listen(smtpPort, '127.0.0.1', () => resolve());
    });
    v = await expiringVault(ca, hosts, 10);
    const passwordFile = join(v.work, 'imap.password');
    writeFileSync(passwordFile, `${dovecot.password}\n`, { mode: 0o600 });
    v.writeConfig([
      'admin_email = pki-admin@example.org',
      '[smtp]',
      'host = 127.0.0.1',
      `port = ${smtpPort}`,
      'from = passtore@example.org',
      'insecure = yes',
      '[ca]',
      `imap_url = ${dovecot.url}`,
      'insecure = yes',
      `trust = ${ca.caCert}`,
      `imap_password_file = ${passwordFile}`,
    ]);
  });

  after(async () => {
    await v?.close();
    if (smtp) await new Promise<void>((resolve) => smtp!.close(() => resolve()));
    await dovecot?.stop();
    ca?.remove();
  });

  /** The flags of every message in the INBOX, by subject (asked over IMAP, as a client). */
  async function flagsBySubject(): Promise<Map<string, string[]>> {
    const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user: dovecot.user, pass: dovecot.password }, logger: false } as ConstructorParameters<typeof ImapFlow>[0]);
    await client.connect();
    const out = new Map<string, string[]>();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        for (const m of await client.fetchAll('1:*', { envelope: true, flags: true })) out.set(m.envelope?.subject ?? '', [...(m.flags ?? [])]);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
    return out;
  }

  /** Runs a passtore-cron command; returns it with the IMAP sessions it made (dovecot's log). */
  async function cronWithImapLog(command: string): Promise<{ r: CronResult; bodies: number; sessions: number }> {
    const from = await dovecot.settledLogLength();
    const r = await v.cron(command);
    await dovecot.settledLogLength();
    const sessions = dovecot.sessionsSince(from);
    return { r, bodies: sessions.reduce((n, s) => n + s.bodyCount, 0), sessions: sessions.length };
  }

  const isRetry = (l: string): boolean => /^FAILED: deploy \S+ \(retried\): /.test(l);
  /** A run's lines and failures without the retried deploys (a feature in flux). */
  function withoutRetries(r: CronResult): { lines: string[]; failures: string[] } {
    assert.equal(r.status, r.failures.length > 0 ? 1 : 0, shown(r));
    return { lines: r.lines.filter((l) => !isRetry(l)), failures: r.failures.filter((l) => !isRetry(l)) };
  }
  /** The second fetch, for the retry test. */
  let secondFetch: CronResult | undefined;

  /** The hosts whose failed deploys this fetch retried (and that failed again, before any connection). */
  function retried(r: CronResult): string[] {
    return r.failures.flatMap((f) => {
      const m = /^FAILED: deploy (\S+) \(retried\): (.*)$/.exec(f);
      if (!m) return [];
      assert.match(m[2]!, /no pinned SSH host key/, f);
      return [m[1]!];
    }).sort();
  }

  test('renew makes a new key and request per expiring certificate; the request mail reaches [smtp]', async () => {
    const r = await v.cron('renew');
    assert.equal(r.status, 0, shown(r));
    // The renewal keeps the key type of the certificate it renews (ec-p256 here).
    for (const h of hosts) assert.ok(r.lines.some((l) => l.startsWith(`renew ${fq(h)}: new ${v.old.get(fq(h))!.keyType} key and request`)), shown(r));
    const s = await v.cron('send');
    assert.equal(s.status, 0, shown(s));
    assert.match(s.stdout, /^mail: \d+ sent$/m, shown(s));
    for (const h of hosts) {
      const fqdn = fq(h);
      const mail = received.find((m) => m.subject === `passtore: certificate request for ${fqdn}`);
      assert.ok(mail, `the request mail for ${fqdn} arrived (got: ${received.map((m) => m.subject).join(' / ')})`);
      assert.deepEqual(mail.to && !Array.isArray(mail.to) ? mail.to.value.map((a) => a.address) : [], ['pki-admin@example.org']);
      const req = mail.attachments.find((a) => a.filename === `${fqdn}.req`);
      assert.ok(req, `the request is attached as ${fqdn}.req`);
      const reqFile = join(v.work, `${fqdn}.mailed.req`);
      writeFileSync(reqFile, req.content);
      const verified = await opensslOk(['req', '-in', reqFile, '-noout', '-verify', '-subject']);
      assert.ok(verified.ok, verified.output);
      assert.match(verified.output, new RegExp(`CN ?= ?${fqdn.replace(/\./g, '\\.')}`));
      // The request is the one the vault holds open, for a key other than the current one.
      const host = (await v.tv.session.store.getHost(fqdn))!;
      const open = (await v.tv.session.store.listRequests(host.id)).filter((q) => q.state === 'created' || q.state === 'sent');
      assert.equal(open.length, 1, `one open request for ${fqdn}`);
      assert.equal(open[0]!.pem.trim(), req.content.toString('utf8').trim());
      assert.notEqual(await spkiSha256OfRequest(open[0]!.pem, join(v.work, 'scratch.req')), (await v.current(fqdn)).spkiSha256, 'a new key');
      // The site's CA signs what it was mailed.
      issued.set(fqdn, await ca.sign(reqFile, { days: 365 }));
    }
  });

  test('fetch stores the certificates mailed as a PEM attachment and inline in the text; the deploys fail (no pinned host key)', async () => {
    const u1 = fq('ui-01');
    const u2 = fq('ui-02');
    const pem1 = readFileSync(issued.get(u1)!);
    const pem2 = readFileSync(issued.get(u2)!, 'utf8');
    dovecot.deliver(caMail(`Certificate for ${u1}`, 'Dear applicant,\nyour certificate is attached.\n', { filename: `${u1}.pem`, contentType: 'application/x-pem-file', content: pem1 }));
    dovecot.deliver(caMail(`Certificate for ${u2}`, `Dear applicant,\n\nhere is your certificate:\n\n${pem2.trim()}\n\nRegards, the CA\n`));

    const { r, bodies, sessions } = await cronWithImapLog('fetch');
    assert.equal(r.status, 1, shown(r));
    for (const fqdn of [u1, u2]) {
      assert.ok(r.lines.some((l) => l.startsWith(`stored the certificate for ${fqdn} from mail `) && l.includes(`"Certificate for ${fqdn}"`)), shown(r));
      // What is asserted about the deploy: it is tried and fails before any connection.
      assert.ok(r.failures.some((f) => f.startsWith(`FAILED: deploy ${fqdn}: `) && f.includes('no pinned SSH host key')), shown(r));
    }
    assert.equal(withoutRetries(r).failures.length, 2, `only the two deploy failures:\n${shown(r)}`);
    assert.ok(!r.stdout.includes(fq('ui-03')), 'nothing for ui-03 was delivered');
    assert.equal(bodies, 2, `the two mails were read once each (${sessions} IMAP sessions)`);

    for (const fqdn of [u1, u2]) {
      const cur = await v.current(fqdn);
      const x = new X509Certificate(readFileSync(issued.get(fqdn)!));
      assert.equal(cur.serial, x.serialNumber.toLowerCase(), `${fqdn}: the new serial is current`);
      assert.notEqual(cur.serial, v.old.get(fqdn)!.serial);
      assert.equal(cur.spkiSha256, spkiSha256OfCert(x.toString()));
      const host = (await v.tv.session.store.getHost(fqdn))!;
      const reqs = await v.tv.session.store.listRequests(host.id);
      const fulfilled = reqs.find((q) => q.keyId === cur.keyId);
      assert.ok(fulfilled, `${fqdn}: the stored certificate's key is the renewal request's`);
      assert.equal(fulfilled.state, 'fulfilled');
      assert.equal(await spkiSha256OfRequest(fulfilled.pem, join(v.work, 'scratch.req')), cur.spkiSha256);
    }
    assert.equal((await v.current(fq('ui-03'))).serial, v.old.get(fq('ui-03'))!.serial, 'ui-03 keeps its old certificate');

    const flags = await flagsBySubject();
    for (const fqdn of [u1, u2]) assert.ok(flags.get(`Certificate for ${fqdn}`)?.includes('\\Seen'), `the mail for ${fqdn} is \\Seen: ${JSON.stringify([...flags])}`);
  });

  test('the next fetch (ui-03 still open) reads no mail again and stores nothing', async () => {
    const before = await v.certRows();
    const { r, bodies, sessions } = await cronWithImapLog('fetch');
    secondFetch = r;
    assert.deepEqual(withoutRetries(r).lines, [], shown(r));
    assert.ok(sessions >= 1, 'the fetcher logged in to look');
    assert.equal(bodies, 0, 'no message body was fetched');
    assert.deepEqual(await v.certRows(), before);
  });

  test('a certificate for a key the vault does not hold, or for a key that waits for none, is refused and not stored', async () => {
    const u1 = fq('ui-01');
    const stranger = await ca.issue(await ca.genKey('ec-p256'), u1);
    const previousKey = await ca.sign(v.old.get(u1)!.requestFile, { days: 365 });
    dovecot.deliver(caMail(`Stranger certificate for ${u1}`, 'attached\n', { filename: 'cert.pem', contentType: 'application/x-pem-file', content: readFileSync(stranger) }));
    dovecot.deliver(caMail(`Old-key certificate for ${u1}`, 'attached\n', { filename: 'cert.pem', contentType: 'application/x-pem-file', content: readFileSync(previousKey) }));
    const before = await v.certRows();

    const { r, bodies } = await cronWithImapLog('fetch');
    assert.equal(r.status, 1, shown(r));
    const w = withoutRetries(r);
    assert.equal(w.failures.length, 2, shown(r));
    assert.equal(w.lines.length, 2, `nothing but the two refusals:\n${shown(r)}`);
    assert.ok(r.failures.some((f) => f.startsWith('FAILED: refused: ') && f.includes('matches no key in the vault') && f.includes(`"Stranger certificate for ${u1}"`)), shown(r));
    assert.ok(r.failures.some((f) => f.startsWith('FAILED: refused: ') && f.includes(`is for a key of ${u1} that waits for no certificate`) && f.includes(`"Old-key certificate for ${u1}"`)), shown(r));
    assert.ok(!r.lines.some((l) => l.startsWith('stored')), shown(r));
    assert.equal(bodies, 2);
    assert.deepEqual(await v.certRows(), before, 'nothing stored');
    for (const f of [stranger, previousKey]) assert.equal(await v.tv.session.store.getCertificateByFingerprint(await ca.fingerprint(f)), undefined);

    const flags = await flagsBySubject();
    assert.ok(flags.get(`Stranger certificate for ${u1}`)?.includes('\\Seen'));
    assert.ok(flags.get(`Old-key certificate for ${u1}`)?.includes('\\Seen'));
  });

  test('a DER .crt attachment is stored; a mail over 5 MiB is reported, not downloaded, marked read; the refused mails are not read (nor refused) again', async () => {
    const u3 = fq('ui-03');
    const der = await ca.certDer(issued.get(u3)!);
    dovecot.deliver(caMail('A very large mail', 'x'.repeat(6 * 1024 * 1024), { filename: 'cert.pem', contentType: 'application/x-pem-file', content: readFileSync(issued.get(u3)!) }));
    dovecot.deliver(caMail(`Certificate for ${u3}`, 'Your certificate (DER) is attached.\n', { filename: `${u3}.crt`, contentType: 'application/pkix-cert', content: der }));
    const { r, bodies } = await cronWithImapLog('fetch');
    assert.equal(r.status, 1, shown(r));
    assert.ok(r.lines.some((l) => l.startsWith(`stored the certificate for ${u3} from mail `)), shown(r));
    const w = withoutRetries(r);
    assert.equal(w.failures.length, 2, shown(r));
    assert.ok(w.failures.some((f) => f.startsWith(`FAILED: deploy ${u3}: `) && f.includes('no pinned SSH host key')), shown(r));
    assert.ok(w.failures.some((f) => /^FAILED: fetch imap: imap fetcher: mail \d+ is larger than 5 MiB: not read, marked read$/.test(f)), shown(r));
    assert.ok(!r.stdout.includes('refused'), shown(r));
    assert.equal(bodies, 1, 'only the new mail of a usual size was read');
    assert.ok((await flagsBySubject()).get('A very large mail')?.includes('\\Seen'), 'the large mail is marked read');
    assert.equal((await v.current(u3)).serial, new X509Certificate(der).serialNumber.toLowerCase());
    assert.equal((await v.tv.session.store.openRequests('*')).length, 0, 'no request is open any more');
  });

  test('the refusals and the failed deploys were reported by mail', async () => {
    const s = await v.cron('send');
    assert.equal(s.status, 0, shown(s));
    const subjects = received.map((m) => m.subject ?? '');
    assert.equal(subjects.filter((x) => x === 'passtore: WARNING: a certificate was refused').length, 2, subjects.join('\n'));
    for (const h of hosts) assert.ok(subjects.includes(`passtore: WARNING: certificate for ${fq(h)} stored but not deployed`), subjects.join('\n'));
  });

  test('later fetches retry the deploys that failed, also with no request open', async () => {
    assert.ok(secondFetch, 'the second fetch ran');
    assert.deepEqual(retried(secondFetch), [fq('ui-01'), fq('ui-02')], shown(secondFetch));
    const r = await v.cron('fetch');
    assert.deepEqual(retried(r), [fq('ui-01'), fq('ui-02'), fq('ui-03')], shown(r));
  });
});
