/**
 * passtore-cron on loopback (SPEC section 8): the real binary run as a child process, on
 * a real SQLite vault made with the real shell commands, a fixture CA driven with the
 * openssl command, a real SMTP receiver (smtp-server) and a real HTTPS download point in
 * this process on 127.0.0.1 (trusted through [ca] http_ca_bundle). No network guard is
 * configured here; test/cron/cron-site.test.ts runs the same program inside the test
 * site's namespaces, with deployment over SSH. Shown here:
 *
 * - refusals: a delivered certificate with a key the vault does not hold, one naming host
 *   A with the pending key of host B (served over HTTPS), and an expired one are not
 *   stored, each is mailed once as a warning, and the run exits 1 with one FAILED line
 *   saying why; a good certificate for a host that cannot be reached is stored, and the
 *   failed deploy is a FAILED line and a warning mail;
 * - reminders are staged: one mail per notify_days threshold crossed, none on the runs
 *   between, none once the certificate is replaced (time moved with a preloaded clock
 *   shift, test/cron/clock-shift.ts);
 * - check: 0, 1, 2 for fine, within crt_ttl, expired (also a really expired certificate),
 *   3 when the vault cannot be opened, each one status line with performance data;
 * - a key file readable by others is refused (3), no key file configured is 3, bad usage
 *   and configuration errors are 2, and `renew --dry-run` changes nothing in the store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixtureCa, readText } from '../x509/fixture-ca.js';
import {
  ADMIN,
  byMessageId,
  certificates,
  certifyHost,
  createCronVault,
  dbRows,
  failures,
  outbox,
  requests,
  runCron,
  serverCert,
  show,
  snapshot,
  writeConfig,
  type CronResult,
  type CronVault,
} from './helpers.js';
import { startHttps, startSmtp, type ReceivedMail, type RunningHttps, type RunningSmtp } from './servers.js';

const DOMAIN = 'site.test';
const fq = (name: string): string => `${name}.${DOMAIN}`;

const work = mkdtempSync(join(tmpdir(), 'passtore-cron-test-'));
const ca = await FixtureCa.create();
/** Another CA, whose certificate rides along in a delivery it has nothing to do with. */
const otherCa = await FixtureCa.create();
const mails: ReceivedMail[] = [];
let smtp: RunningSmtp;
let https: RunningHttps;
const www = join(work, 'www');
mkdirSync(www);
const vaults: CronVault[] = [];

before(async () => {
  smtp = await startSmtp({ host: '127.0.0.1', onMail: (m) => mails.push(m) });
  const tls = await serverCert(ca, '127.0.0.1');
  https = await startHttps({ host: '127.0.0.1', key: tls.key, cert: tls.cert, www });
});

after(async () => {
  await smtp?.close();
  await https?.close();
  for (const v of vaults) rmSync(v.dir, { recursive: true, force: true });
  ca.remove();
  otherCa.remove();
  rmSync(work, { recursive: true, force: true });
});

async function vault(hosts: string[]): Promise<CronVault> {
  const v = await createCronVault({ domain: DOMAIN, hosts: hosts.map((name) => ({ name })) });
  vaults.push(v);
  return v;
}

const smtpSection = () => ({ host: '127.0.0.1', port: smtp.port, from: 'passtore@vault.site.test', insecure: 'yes' });

const cron = (v: CronVault, args: string[], shiftDays = 0): Promise<CronResult> => runCron(['--config', v.configFile, ...args], { dataHome: v.dataHome, shiftDays });

/** The mails received from index `from` on. */
const since = (from: number): ReceivedMail[] => mails.slice(from);

/** Signs a request file (PEM text) with the fixture CA. */
async function signPem(pem: string, options: Parameters<FixtureCa['sign']>[1] = {}): Promise<string> {
  const file = ca.path('request.pem');
  writeFileSync(file, pem);
  return ca.sign(file, options);
}

/** A YYYYMMDDHHMMSSZ time `days` from now (negative: in the past). */
const caTime = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString().replace(/[-:T]/g, '').replace(/\..*$/, 'Z').slice(2);

describe('refusals and a failed deploy (dir and http fetchers)', () => {
  test('a certificate with another key, for another host, or expired is refused, mailed once, and exits 1', async () => {
    const v = await vault(['a', 'b']);
    const drop = join(v.dir, 'drop');
    mkdirSync(drop);
    writeConfig(v, { smtp: smtpSection(), ca: { dir: drop, http_url: `https://127.0.0.1:${https.port}/certs/{fqdn}.pem`, http_ca_bundle: ca.caCert, trust: ca.caCert } });
    // Pending keys and requests for a and b, as crtreq makes them.
    const reqDir = join(v.dir, 'requests');
    mkdirSync(reqDir);
    await v.withShell(async (tv) => {
      assert.equal(await tv.run(`crtreq a --out ${reqDir}`), 0, tv.io.text());
      assert.equal(await tv.run(`crtreq b --out ${reqDir}`), 0, tv.io.text());
    });
    const reqA = join(reqDir, `${fq('a')}.req`);
    const reqB = join(reqDir, `${fq('b')}.req`);
    const before = snapshot(v, { tables: ['audit'] });

    // 1. A certificate naming a, whose key the vault never held, in a file whose name
    // holds a newline (outside input: it must not forge a line of the report).
    const stranger = await ca.genKey('ec-p256');
    writeFileSync(join(drop, '1-stranger\nFAILED: forged.pem'), readText(await ca.issue(stranger, fq('a'))));
    // 2. A certificate naming a (subject and DNS name), with the pending key of b: over HTTPS, at b's URL.
    const crossed = await ca.sign(reqB, { subject: `/DC=org/DC=example/O=Test/CN=${fq('a')}`, sans: [fq('a')] });
    writeFileSync(join(www, `${fq('b')}.pem`), readText(crossed));
    // 3. a's own request, signed with a validity that ended yesterday.
    const expired = await ca.sign(reqA, { notBefore: caTime(-30), notAfter: caTime(-1) });
    writeFileSync(join(drop, '3-expired.pem'), readText(expired));

    const from = mails.length;
    const r = await cron(v, ['run']);
    assert.equal(r.code, 1, show(r));
    const failed = failures(r);
    assert.equal(failed.length, 3, show(r));
    assert.ok(failed.every((l) => l.startsWith('FAILED: refused: ')), show(r));
    assert.match(failed.find((l) => l.includes('1-stranger\\x0aFAILED: forged.pem')) ?? '', /matches no key in the vault/, show(r));
    assert.ok(!r.stdout.split('\n').some((l) => l.startsWith('FAILED: forged')), show(r));
    assert.match(failed.find((l) => l.includes(`certs/${fq('b')}.pem`)) ?? '', new RegExp(`does not name ${fq('b')}`), show(r));
    assert.match(failed.find((l) => l.includes('3-expired.pem')) ?? '', new RegExp(`${fq('a')} expired on \\d{4}-\\d{2}-\\d{2}`), show(r));
    // Nothing on stderr (an HTTPS fetch from an IP address URL once printed Node's DEP0123).
    assert.equal(r.stderr, '', 'nothing on stderr');

    // Nothing stored: no certificate, the keys still pending, the requests still open.
    assert.deepEqual(certificates(v), []);
    assert.deepEqual(requests(v).map((q) => q.state), ['created', 'created']);
    const afterRun = snapshot(v, { tables: ['audit'] });
    for (const t of ['certificates', 'private_keys', 'cert_requests', 'hosts', 'entries', 'key_slots']) assert.deepEqual(afterRun[t], before[t], `${t} unchanged`);

    // Each refusal mailed as a warning, with the certificate attached; only those three mails.
    const got = since(from);
    assert.equal(got.length, 3, got.map((m) => m.subject).join('\n'));
    for (const m of got) {
      assert.equal(m.subject, 'passtore: WARNING: a certificate was refused');
      assert.equal(m.to, ADMIN);
      assert.deepEqual(m.attachments.map((a) => a.filename), ['refused.pem']);
      assert.match(m.attachments[0]!.content, /^-----BEGIN CERTIFICATE-----/);
      assert.match(m.text, /Nothing was stored/);
    }
    assert.ok(got.some((m) => /matches no key in the vault/.test(m.text)));
    assert.ok(got.some((m) => new RegExp(`does not name ${fq('b')}`).test(m.text)));
    assert.ok(got.some((m) => /expired on/.test(m.text)));
    // The drop folder's refused files moved aside, so they are not read again.
    assert.deepEqual(readdirSync(join(v.dataHome, 'passtore', 'ca-drop', 'refused')).sort(), ['1-stranger\nFAILED: forged.pem', '3-expired.pem']);
    assert.deepEqual(readdirSync(drop).filter((f) => f.endsWith('.pem')), []);

    // 2nd run: the HTTPS point still serves the crossed certificate: refused again (exit 1,
    // one line), but not mailed again.
    const from2 = mails.length;
    const r2 = await cron(v, ['run']);
    assert.equal(r2.code, 1, show(r2));
    assert.equal(failures(r2).length, 1, show(r2));
    assert.match(failures(r2)[0]!, /^FAILED: refused: .*does not name/);
    assert.equal(since(from2).length, 0, 'a refusal is mailed once, not once per run');
    assert.deepEqual(certificates(v), []);
    unlinkSync(join(www, `${fq('b')}.pem`));

    // 3rd run: a's good certificate arrives; it is stored, but a cannot be reached (no
    // address, a name that does not resolve): the deploy failure is a line and a warning mail.
    const good = await ca.sign(reqA, { days: 365 });
    // Delivered with the CA's certificate, its issuer (all the CA gave): stored with it as its
    // chain; another CA's certificate in the file issues nothing here: named, not stored.
    writeFileSync(join(drop, 'a-good.pem'), readText(otherCa.caCert) + readText(good) + readText(ca.caCert));
    const from3 = mails.length;
    const r3 = await cron(v, ['run']);
    assert.equal(r3.code, 1, show(r3));
    assert.ok(r3.lines.some((l) => l.startsWith(`stored the certificate for ${fq('a')} from ${join(drop, 'a-good.pem')}`)), show(r3));
    assert.ok(r3.lines.includes(`${join(drop, 'a-good.pem')}: passed over 1 chain certificate that issues none of the certificates stored: CN=Passtore Fixture CA,O=Test,DC=example,DC=org`), show(r3));
    assert.equal(failures(r3).length, 1, show(r3));
    assert.match(failures(r3)[0]!, new RegExp(`^FAILED: deploy ${fq('a')}: .*(no address|does not resolve)`), show(r3));
    assert.deepEqual(certificates(v).map((c) => [c.fqdn, c.state, c.deployed_at]), [[fq('a'), 'current', null]]);
    assert.deepEqual(dbRows<{ chain_pem: string | null }>(v, 'SELECT chain_pem FROM certificates').map((c) => c.chain_pem?.replace(/\r/g, '')), [readText(ca.caCert)], 'the fetched delivery\'s chain is stored with the certificate');
    const got3 = since(from3);
    assert.deepEqual(got3.map((m) => m.subject), [`passtore: WARNING: certificate for ${fq('a')} stored but not deployed`], show(r3));
    assert.match(got3[0]!.text, new RegExp(`putcrt ${fq('a')}`));
    assert.ok(existsSync(join(v.dataHome, 'passtore', 'ca-drop', 'done', 'a-good.pem')));
    assert.equal(outbox(v).filter((m) => m.state !== 'sent').length, 0, 'every message went out');
  });
});

describe('staged reminders', () => {
  test('one mail per notify_days threshold crossed, none between, none once replaced', async () => {
    const v = await vault(['c']);
    // 20 days left now; renewal starts at crt_ttl = 10; reminders at 30, 14, 7, 2.
    await certifyHost(v, ca, 'c', 20);
    writeConfig(v, { top: { crt_ttl: 10, notify_days: '30,14,7,2' }, smtp: smtpSection() });
    const reminders = (list: ReceivedMail[]) => list.filter((m) => m.subject.startsWith(`passtore: the certificate of ${fq('c')} expires in`));
    const requestsMailed = (list: ReceivedMail[]) => list.filter((m) => m.subject === `passtore: certificate request for ${fq('c')}`);

    const step = async (shift: number, expect: { reminders: number; requests?: number; days?: number }, why: string) => {
      const from = mails.length;
      const r = await cron(v, ['run'], shift);
      assert.equal(r.code, 0, `${why}: ${show(r)}`);
      const got = since(from);
      assert.equal(reminders(got).length, expect.reminders, `${why}: reminders ${got.map((m) => m.subject).join(' / ')}`);
      assert.equal(requestsMailed(got).length, expect.requests ?? 0, `${why}: request mails`);
      assert.equal(got.length, expect.reminders + (expect.requests ?? 0), `${why}: no other mail`);
      if (expect.days !== undefined) assert.equal(reminders(got)[0]!.subject, `passtore: the certificate of ${fq('c')} expires in ${expect.days} days`);
      return { r, got };
    };

    await step(0, { reminders: 1, days: 19 }, '19 days left: the 30-day threshold');
    await step(0, { reminders: 0 }, 'the same day again');
    await step(6, { reminders: 1, days: 13 }, '13 days left: the 14-day threshold');
    const { got } = await step(10, { reminders: 0, requests: 1 }, '9 days left: within crt_ttl, the request is mailed (no new threshold)');
    await step(13, { reminders: 1, days: 6 }, '6 days left: the 7-day threshold');
    await step(13, { reminders: 0 }, '6 days left, again (and the request is not mailed again)');

    // The request mailed at crt_ttl is signed and stored (getcrt, by an operator): the
    // certificate is replaced; no reminder follows, at the 7- or the 2-day mark.
    const mailed = requestsMailed(got)[0]!;
    assert.deepEqual(mailed.attachments.map((a) => a.filename), [`${fq('c')}.req`]);
    const cert = await signPem(mailed.attachments[0]!.content, { days: 365 });
    await v.withShell(async (tv) => assert.equal(await tv.run(`getcrt ${cert}`), 0, tv.io.text()));
    assert.deepEqual(certificates(v).map((c) => c.state), ['history', 'current']);
    await step(13, { reminders: 0 }, 'replaced, 6 days before the old one ends');
    await step(18, { reminders: 0 }, 'replaced, 1 day before the old one ends (2-day threshold)');
    assert.equal(outbox(v).filter((m) => m.subject.includes('expires in')).length, 3, 'three reminders in the outbox, all told');
  });
});

describe('check (monitoring plugin)', () => {
  const parse = (r: CronResult) => {
    assert.equal(r.lines.length, 1, `one status line: ${show(r)}`);
    assert.ok(r.stdout.endsWith('\n') && r.stdout.split('\n').length === 2, show(r));
    const m = /^PASSTORE (OK|WARNING|CRITICAL|UNKNOWN) - (.*?)(?: \| (.*))?$/.exec(r.lines[0]!);
    assert.ok(m, `a plugin status line: ${r.lines[0]}`);
    const perf = Object.fromEntries((m[3] ?? '').split(' ').filter(Boolean).map((p) => p.split('=') as [string, string]));
    return { state: m[1], text: m[2]!, perf };
  };

  test('0, 1, 2 for fine, within crt_ttl, expired; 3 when the vault cannot be opened', async () => {
    const v = await vault(['d', 'e']);
    await certifyHost(v, ca, 'd', 20);
    writeConfig(v, { top: { crt_ttl: 10 } });

    const ok = await cron(v, ['check']);
    assert.equal(ok.code, 0, show(ok));
    const p0 = parse(ok);
    assert.equal(p0.state, 'OK');
    assert.match(p0.text, /1 certificates, none within 10 days/);
    // The timeline's counts (week01=…, month01=…) are checked by the timeline tests.
    const perfOf = (p: Record<string, string>) => Object.fromEntries(Object.entries(p).filter(([k]) => !/^(week|month)\d\d$|^later$/.test(k)));
    assert.deepEqual(perfOf(p0.perf), { certificates: '1', expiring: '0;;;0', expired: '0;;;0', open_requests: '0', queued_mail: '0', unmailed_requests: '0', undeployed: '0', drifted: '0;1;;0' });

    const warn = await cron(v, ['check'], 12);
    assert.equal(warn.code, 1, show(warn));
    const p1 = parse(warn);
    assert.equal(p1.state, 'WARNING');
    assert.match(p1.text, new RegExp(`1 within 10 days: ${fq('d')}`));
    assert.equal(p1.perf.expiring, '1;;;0');

    const crit = await cron(v, ['check'], 25);
    assert.equal(crit.code, 2, show(crit));
    const p2 = parse(crit);
    assert.equal(p2.state, 'CRITICAL');
    assert.match(p2.text, new RegExp(`1 expired: ${fq('d')}`));
    assert.equal(p2.perf.expired, '1;;;0');

    // A really expired certificate (stored with getcrt --force), on the real clock.
    const reqDir = join(v.dir, 'req-e');
    mkdirSync(reqDir);
    await v.withShell(async (tv) => {
      assert.equal(await tv.run(`crtreq e --out ${reqDir}`), 0, tv.io.text());
      const old = await ca.sign(join(reqDir, `${fq('e')}.req`), { notBefore: caTime(-60), notAfter: caTime(-2) });
      assert.equal(await tv.run(`getcrt ${old} --force`), 0, tv.io.text());
    });
    const crit2 = await cron(v, ['check']);
    assert.equal(crit2.code, 2, show(crit2));
    const p3 = parse(crit2);
    assert.match(p3.text, new RegExp(`1 expired: ${fq('e')}`));
    assert.equal(p3.perf.certificates, '2');

    // 3: a key file that has no slot in this vault (another vault's), a database that
    // cannot be opened, a configuration that cannot be read.
    const other = await vault([]);
    writeConfig(v, { top: { crt_ttl: 10, keyfile: other.keyfile } });
    const u1 = await cron(v, ['check']);
    assert.equal(u1.code, 3, show(u1));
    assert.match(parse(u1).text, /^the vault cannot be opened: .*key file .* has no key slot in this vault/);

    writeConfig(v, { top: { crt_ttl: 10, db: `sqlite:${join(v.dir, 'no-such-dir', 'vault.db')}` } });
    const u2 = await cron(v, ['check']);
    assert.equal(u2.code, 3, show(u2));
    assert.equal(parse(u2).state, 'UNKNOWN');
    assert.match(parse(u2).text, /^the vault cannot be opened: no vault in sqlite:/);

    const garbage = join(v.dir, 'garbage.db');
    writeFileSync(garbage, 'this is not an SQLite database, not even close. '.repeat(100), { mode: 0o600 });
    writeConfig(v, { top: { crt_ttl: 10, db: `sqlite:${garbage}` } });
    const u4 = await cron(v, ['check']);
    assert.equal(u4.code, 3, show(u4));
    assert.match(parse(u4).text, /^the vault cannot be opened: /);

    const u3 = await runCron(['--config', join(v.dir, 'missing.conf'), 'check'], { dataHome: v.dataHome });
    assert.equal(u3.code, 3, show(u3));
    assert.match(parse(u3).text, /cannot read the configuration/);
    writeConfig(v, { top: { crt_ttl: 10 } });
  });
});

describe('key file, usage, dry run', () => {
  test('a key file readable by others is refused (3); no key file is 3; bad usage is 2', async () => {
    const v = await vault(['f']);
    writeConfig(v, {});
    const good = await cron(v, ['run']);
    assert.equal(good.code, 0, `nothing to do is success: ${show(good)}`);

    chmodSync(v.keyfile, 0o644);
    for (const command of ['run', 'check']) {
      const r = await cron(v, [command]);
      if (command === 'check') {
        assert.equal(r.code, 3, show(r));
        assert.match(r.stdout, /^PASSTORE UNKNOWN - the vault cannot be opened: key file .* is readable by group or others/);
        continue;
      }
      assert.equal(r.code, 3, show(r));
      assert.deepEqual(r.lines, [`passtore-cron: key file ${v.keyfile} is readable by group or others (mode 644); chmod 400 it`], show(r));
    }
    chmodSync(v.keyfile, 0o640);
    assert.equal((await cron(v, ['run'])).code, 3, 'group-readable (0640) is refused too');
    chmodSync(v.keyfile, 0o400);

    writeConfig(v, { noKeyfile: true });
    const none = await cron(v, ['run']);
    assert.equal(none.code, 3, show(none));
    assert.equal(none.lines.length, 1, show(none));
    assert.match(none.lines[0]!, /no key file configured/);
    writeConfig(v, {});

    const usage: string[][] = [[], ['bogus'], ['run', 'extra'], ['run', '--dry-run'], ['--bogus', 'run']];
    for (const args of usage) {
      const r = await cron(v, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${show(r)}`);
      assert.match(r.stderr, /usage: passtore-cron/, `${args.join(' ')} shows the usage`);
    }
    // A configuration error is 2 too, naming file, line and key.
    writeFileSync(v.configFile, `db = sqlite:${v.dbPath}\nkeyfile = ${v.keyfile}\ncrt_ttl = soon\n`);
    const conf = await cron(v, ['run']);
    assert.equal(conf.code, 2, show(conf));
    assert.match(conf.stdout, new RegExp(`${v.configFile}:3: crt_ttl: expected a whole number`));
    writeConfig(v, {});
    // The key file's content never shows, whatever happened.
    const secret = readFileSync(v.keyfile, 'utf8').split('\n')[1]!;
    for (const r of [good, none, conf]) assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
  });

  test('renew --dry-run changes nothing in the store and sends nothing', async () => {
    const v = await vault(['g']);
    await certifyHost(v, ca, 'g', 5);
    const drop = join(v.dir, 'drop');
    mkdirSync(drop);
    writeConfig(v, { smtp: smtpSection(), ca: { dir: drop, trust: ca.caCert } });
    const auditBefore = dbRows<{ seq: number }>(v, 'SELECT seq FROM audit ORDER BY seq');
    const before = snapshot(v, { tables: ['audit'], columns: { vault: ['audit_head', 'summary'] } });
    const from = mails.length;

    const r = await cron(v, ['renew', '--dry-run']);
    assert.equal(r.code, 0, show(r));
    assert.ok(r.lines.some((l) => new RegExp(`^would renew ${fq('g')}: expires \\d{4}-\\d{2}-\\d{2} \\(4 days\\)$`).test(l)), show(r));
    assert.ok(r.lines.some((l) => new RegExp(`^would remind: ${fq('g')} expires in 4 days \\(threshold 7\\)$`).test(l)), show(r));

    const afterDry = snapshot(v, { tables: ['audit'], columns: { vault: ['audit_head', 'summary'] } });
    assert.deepEqual(afterDry, before, 'every table but the audit trail (its sealed head, and the summary that seals the head with the rest) is unchanged');
    const added = dbRows<{ action: string; outcome: string }>(v, 'SELECT action, outcome FROM audit WHERE seq > ? ORDER BY seq', [auditBefore.at(-1)?.seq ?? 0]);
    assert.deepEqual(added, [{ action: 'unlock', outcome: 'ok' }], 'the audit trail only records the key file unlock');
    assert.equal(mails.length, from, 'no mail sent');

    // The same without --dry-run does the work the dry run described.
    const real = await cron(v, ['renew']);
    assert.equal(real.code, 0, show(real));
    assert.deepEqual(requests(v).filter((q) => q.state === 'created').map((q) => q.fqdn), [fq('g')]);
    assert.equal(outbox(v).filter((m) => m.state === 'queued').length, 2, 'request and reminder queued (renew does not send)');
    assert.equal(byMessageId(since(from)).size, 0);
  });
});

describe('regressions: bugs found and fixed', () => {
  test('passtore-cron check with a mistyped database path creates nothing', async () => {
    const v = await vault([]);
    const typo = join(v.dir, 'no-such-dir', 'vault.db');
    writeConfig(v, { top: { db: `sqlite:${typo}` } });
    const r = await cron(v, ['check']);
    assert.equal(r.code, 3, show(r));
    assert.ok(!existsSync(join(v.dir, 'no-such-dir')), `${typo} was created`);
  });
});
