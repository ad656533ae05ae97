/**
 * passtore-cron end to end in the test site (test/support/site.ts): the real binary runs
 * inside the vault namespace (`ip netns exec`), whose link is down and firewall closed
 * until the network guard ([network] commands) opens the one target it needs. The SMTP
 * receiver and the CA's HTTPS download point (test/cron/servers.ts) run as a program
 * inside a third site host's namespace, so mail and HTTPS go through the guard exactly as
 * SSH does; what they receive comes back to this process as JSON lines. The deploy goes
 * over SSH to real sshd hosts with their own /etc. Shown here:
 *
 * - a vault certificate within crt_ttl: `run` makes a new key and request and mails it
 *   (attached as <fqdn>.req); the test's CA signs it and delivers it into the drop folder
 *   (host1) and onto the HTTPS point (host2); the next `run` stores both, deploys each to
 *   its host (files, modes, keys checked on the host), mails each success; a third `run`
 *   has nothing to do (exit 0, no mail); the guard is closed after every run;
 * - SMTP down during a run: renewal, storing and deploying still happen, the run exits 1
 *   with a line per message, and the messages stay queued in the outbox; with a receiver
 *   that takes one message and defers the rest, then a working one, each message is
 *   received exactly once (counted by Message-ID);
 * - a deploy that fails (sshd stopped) leaves the certificate stored, is a FAILED line and
 *   a warning mail; the next run deploys it (retried), with or without another request
 *   open, and the run after does not deploy it again; the retry is mailed;
 * - SIGTERM, SIGHUP or SIGINT to a `run` held in the middle of a deploy (PASSTORE_HOLD_AT):
 *   the deploy in flight finishes, the run exits with 128 plus the signal's number, the
 *   vault namespace's link is down and its firewall closed, no guard marker is left, and
 *   the run lease is released (the next run acts at once); the same for SIGTERM to the
 *   daemon while its scheduled run is held there, which exits 0.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertGuardClosed, certDir, certFingerprint, CRT_DIR, sha256, spkiOnHost } from '../remote/helpers.js';
import { siteSkip, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa, opensslOk } from '../x509/fixture-ca.js';
import {
  ADMIN,
  byMessageId,
  certificates,
  certifyHost,
  createCronVault,
  dbRows,
  failures,
  NsServices,
  outbox,
  requests,
  runCron,
  serverCert,
  show,
  spkiOf,
  until,
  writeConfig,
  type CronResult,
  type CronVault,
} from './helpers.js';
import type { ReceivedMail } from './servers.js';

const skip = siteSkip();
const SMTP_PORT = 2525;
const HTTPS_PORT = 8443;

describe('passtore-cron in the test site (vault namespace, guard, SSH deploy)', { skip }, () => {
  let site: TestSite;
  let ca: FixtureCa;
  let services: NsServices;
  let work: string;
  let www: string;
  let h1: TestHost;
  let h2: TestHost;
  let svc: TestHost;
  const vaults: CronVault[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'passtore-cron-site-'));
    www = join(work, 'www');
    mkdirSync(www);
    [site, ca] = await Promise.all([TestSite.start(3), FixtureCa.create()]);
    [h1, h2, svc] = site.hosts as [TestHost, TestHost, TestHost];
    // Mail and HTTPS are served straight from that host: the delaying relay forwards SSH only.
    if (svc.realAddress) svc.address = svc.realAddress;
    const tls = await serverCert(ca, svc.address);
    services = new NsServices(svc.ns, svc.address, { smtp: SMTP_PORT, https: HTTPS_PORT }, tls, www);
    await services.start();
  });

  after(async () => {
    await services?.stop();
    await site?.stop();
    ca?.remove();
    for (const v of vaults) rmSync(v.dir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const siteVault = async (): Promise<CronVault> => {
    const v = await createCronVault({
      domain: site.domain,
      hosts: [h1, h2].map((h) => ({ name: h.name, address: h.address, rootPassword: h.rootPassword, hostKey: h.hostKey })),
    });
    vaults.push(v);
    return v;
  };

  const configure = (v: CronVault, ca_: Record<string, string>) =>
    writeConfig(v, {
      smtp: { host: svc.address, port: SMTP_PORT, from: 'passtore@vault.site.test', insecure: 'yes' },
      ca: ca_,
      extra: site.networkConfig(),
    });

  const run = async (v: CronVault, what: string): Promise<CronResult> => {
    const r = await runCron(['--config', v.configFile, 'run'], { ns: site.vaultNs, dataHome: v.dataHome });
    await assertGuardClosed(site, what);
    return r;
  };

  /** Asserts a host holds the vault's current pair for it, with mode and owner. */
  const assertDeployed = async (v: CronVault, h: TestHost, certFile: string) => {
    const current = certificates(v).find((c) => c.fqdn === h.fqdn && c.state === 'current')!;
    const pem = dbRows<{ pem: string }>(v, "SELECT c.pem FROM certificates c JOIN hosts h ON h.id = c.host_id WHERE h.fqdn = ? AND c.state = 'current'", [h.fqdn])[0]!.pem;
    assert.equal(current.fingerprint, await certFingerprint(certFile), `${h.fqdn}: the stored certificate is the one the CA issued`);
    assert.ok(current.deployed_at, `${h.fqdn}: recorded as deployed`);
    const files = await certDir(site, h);
    assert.deepEqual(files.get('hostcert.pem'), { sha256: sha256(pem), mode: '644', owner: 'root' }, `${h.fqdn}: hostcert.pem`);
    assert.deepEqual({ ...files.get('hostkey.pem'), sha256: '' }, { sha256: '', mode: '400', owner: 'root' }, `${h.fqdn}: hostkey.pem`);
    const certSpki = await spkiOnHost(site, h, `${CRT_DIR}/hostcert.pem`, 'cert');
    assert.equal(await spkiOnHost(site, h, `${CRT_DIR}/hostkey.pem`, 'key'), certSpki, `${h.fqdn}: the deployed key matches the deployed certificate`);
    assert.equal(certSpki, await spkiOf(pem, 'cert', join(work, 'spki.pem')));
  };

  test('renew mails the request; the CA delivers by drop folder and HTTPS; the next run stores, deploys and mails', async () => {
    const v = await siteVault();
    await certifyHost(v, ca, h1.name, 9);
    await certifyHost(v, ca, h2.name, 9);
    const drop = join(v.dir, 'drop');
    mkdirSync(drop);
    configure(v, { dir: drop, http_url: `https://${svc.address}:${HTTPS_PORT}/certs/{fqdn}.pem`, http_ca_bundle: ca.caCert, trust: ca.caCert });
    const oldCerts = certificates(v);
    const mailsBefore = services.mails.length;
    const httpBefore = services.http.length;

    // Run 1: both certificates are within crt_ttl: new keys and requests, mailed.
    const r1 = await run(v, 'run 1');
    assert.equal(r1.code, 0, show(r1));
    for (const h of [h1, h2]) {
      assert.ok(r1.lines.some((l) => new RegExp(`^renew ${h.fqdn}: new rsa-2048 key and request \\(expires \\d{4}-\\d{2}-\\d{2}, 8 days\\)$`).test(l)), show(r1));
    }
    assert.ok(r1.lines.includes('mail: 4 sent'), show(r1));
    await until(() => services.mails.length >= mailsBefore + 4, 'four mails');
    const got1 = services.mails.slice(mailsBefore);
    assert.equal(got1.length, 4);
    const reqDir = join(v.dir, 'mailed');
    mkdirSync(reqDir);
    const mailedReq = new Map<string, string>();
    for (const h of [h1, h2]) {
      const m = got1.find((x) => x.subject === `passtore: certificate request for ${h.fqdn}`);
      assert.ok(m, `the request for ${h.fqdn} is mailed: ${got1.map((x) => x.subject).join(' / ')}`);
      assert.equal(m.to, ADMIN);
      assert.match(m.text, /What to do: send the attached request/);
      assert.deepEqual(m.attachments.map((a) => a.filename), [`${h.fqdn}.req`]);
      const file = join(reqDir, `${h.fqdn}.req`);
      writeFileSync(file, m.attachments[0]!.content);
      assert.ok((await opensslOk(['req', '-in', file, '-noout', '-verify'])).ok, 'openssl accepts the mailed request');
      const pending = dbRows<{ spki: string }>(v, "SELECT k.spki_sha256 AS spki FROM private_keys k JOIN hosts h ON h.id = k.host_id WHERE h.fqdn = ? AND k.state = 'pending'", [h.fqdn]);
      assert.deepEqual(pending.map((p) => p.spki), [await spkiOf(m.attachments[0]!.content, 'req', join(work, 'spki.req'))], 'the mailed request is for the new pending key');
      assert.ok(got1.some((x) => x.subject === `passtore: the certificate of ${h.fqdn} expires in 8 days`), `a reminder for ${h.fqdn}`);
      mailedReq.set(h.fqdn, file);
    }
    // The HTTPS point was asked for both and had nothing yet.
    assert.deepEqual(services.http.slice(httpBefore).map((e) => `${e.path} ${e.status}`).sort(), [`/certs/${h1.fqdn}.pem 404`, `/certs/${h2.fqdn}.pem 404`]);
    assert.deepEqual(certificates(v), oldCerts, 'the current certificates stay in place until the new ones arrive');

    // The CA signs: host1's certificate into the drop folder, host2's onto the HTTPS point.
    const cert1 = await ca.sign(mailedReq.get(h1.fqdn)!, { days: 365, out: ca.path('host1-new.crt') });
    const cert2 = await ca.sign(mailedReq.get(h2.fqdn)!, { days: 365, out: ca.path('host2-new.crt') });
    copyFileSync(cert1, join(drop, 'host1-from-ra.pem'));
    copyFileSync(cert2, join(www, `${h2.fqdn}.pem`));

    // Run 2: both stored, deployed and announced.
    const mails2 = services.mails.length;
    const r2 = await run(v, 'run 2');
    assert.equal(r2.code, 0, show(r2));
    assert.ok(r2.lines.some((l) => l.startsWith(`stored the certificate for ${h1.fqdn} from ${join(drop, 'host1-from-ra.pem')}`)), show(r2));
    assert.ok(r2.lines.some((l) => l.startsWith(`stored the certificate for ${h2.fqdn} from https://${svc.address}:${HTTPS_PORT}/certs/${h2.fqdn}.pem`)), show(r2));
    for (const h of [h1, h2]) {
      const line = r2.lines.find((l) => l.startsWith(`${h.fqdn}: deployed to ${CRT_DIR} (`));
      assert.ok(line, show(r2));
      // The line claims a backup of the previous pair only when there was one (there was none).
      const claimed = /\(previous pair kept as \.(\S+)\)$/.exec(line)?.[1];
      const files = await certDir(site, h);
      if (claimed) assert.ok(files.has(`hostcert.pem.${claimed}`), `${line}: but ${CRT_DIR} holds ${[...files.keys()].join(', ')}`);
      else assert.match(line, /\(first deployment\)$/);
    }
    assert.ok(r2.lines.includes('mail: 2 sent'), show(r2));
    await assertDeployed(v, h1, cert1);
    await assertDeployed(v, h2, cert2);
    assert.ok(existsSync(join(v.dataHome, 'passtore', 'ca-drop', 'done', 'host1-from-ra.pem')), 'a copy of the drop file is kept in passtore\'s ca-drop/done/');
    assert.deepEqual(
      certificates(v).map((c) => `${c.fqdn} ${c.state}`),
      [`${h1.fqdn} history`, `${h2.fqdn} history`, `${h1.fqdn} current`, `${h2.fqdn} current`],
    );
    assert.deepEqual(requests(v).map((q) => q.state), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    await until(() => services.mails.length >= mails2 + 2, 'two mails');
    const got2 = services.mails.slice(mails2);
    for (const [h, file] of [[h1, cert1], [h2, cert2]] as const) {
      const m = got2.find((x) => x.subject === `passtore: new certificate for ${h.fqdn} stored and deployed`);
      assert.ok(m, `success mail for ${h.fqdn}: ${got2.map((x) => x.subject).join(' / ')}`);
      assert.deepEqual(m.attachments.map((a) => a.filename), [`${h.fqdn}.pem`]);
      writeFileSync(join(work, 'mailed.pem'), m.attachments[0]!.content);
      assert.equal(await certFingerprint(join(work, 'mailed.pem')), await certFingerprint(file));
    }

    // Run 3: nothing to do is success, and says so; no mail.
    const mails3 = services.mails.length;
    const r3 = await run(v, 'run 3');
    assert.equal(r3.code, 0, show(r3));
    assert.deepEqual(r3.lines, ['renew: no certificate expires soon', 'fetch: no open request'], show(r3));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(services.mails.length, mails3);
    assert.ok([...byMessageId(services.mails.slice(mailsBefore)).values()].every((n) => n === 1), 'every Message-ID once');
    assert.ok(outbox(v).every((m) => m.state === 'sent'));
  });

  test('SMTP down: the run does its other work, exits 1, keeps the mail queued; later each message goes exactly once', async () => {
    const v = await siteVault();
    await certifyHost(v, ca, h1.name, 9);
    // host2 has an open request whose certificate is already in the drop folder.
    const drop = join(v.dir, 'drop');
    mkdirSync(drop);
    const reqDir = join(v.dir, 'req');
    mkdirSync(reqDir);
    await v.withShell(async (tv) => assert.equal(await tv.run(`crtreq ${h2.name} --out ${reqDir}`), 0, tv.io.text()));
    const cert2 = await ca.sign(join(reqDir, `${h2.fqdn}.req`), { days: 365, out: ca.path('host2-smtpdown.crt') });
    copyFileSync(cert2, join(drop, 'host2.pem'));
    configure(v, { dir: drop, trust: ca.caCert });
    const start = services.mails.length;

    // Run 1, no SMTP server at all: connections are refused.
    await services.stop();
    const r1 = await run(v, 'run 1 (SMTP down)');
    assert.equal(r1.code, 1, show(r1));
    assert.ok(r1.lines.some((l) => l.startsWith(`renew ${h1.fqdn}: new rsa-2048 key and request`)), show(r1));
    assert.ok(r1.lines.some((l) => l.startsWith(`stored the certificate for ${h2.fqdn} from ${join(drop, 'host2.pem')}`)), show(r1));
    assert.ok(r1.lines.some((l) => l.startsWith(`${h2.fqdn}: deployed to ${CRT_DIR}`)), show(r1));
    await assertDeployed(v, h2, cert2);
    const f1 = failures(r1);
    assert.equal(f1.length, 3, show(r1));
    for (const l of f1) assert.match(l, /^FAILED: mail \d+ ".*" not sent \(.+\); it stays queued$/);
    const queued1 = outbox(v);
    assert.equal(queued1.length, 3);
    assert.ok(queued1.every((m) => m.state === 'queued' && m.attempts === 1 && m.last_error), JSON.stringify(queued1));
    assert.deepEqual(
      queued1.map((m) => m.subject).sort(),
      [`passtore: certificate request for ${h1.fqdn}`, `passtore: new certificate for ${h2.fqdn} stored and deployed`, `passtore: the certificate of ${h1.fqdn} expires in 8 days`].sort(),
    );

    // Run 2: a receiver that takes one message and defers the others (451).
    await services.start({ smtpAccept: 1, https: false });
    const r2 = await run(v, 'run 2 (SMTP defers)');
    assert.equal(r2.code, 1, show(r2));
    assert.ok(r2.lines.includes('mail: 1 sent'), show(r2));
    assert.equal(failures(r2).length, 2, show(r2));
    for (const l of failures(r2)) assert.match(l, /^FAILED: mail \d+ ".*" not sent \(.+\); it stays queued$/);
    await until(() => services.mails.length >= start + 1, 'one mail');
    assert.deepEqual(outbox(v).map((m) => m.state), ['sent', 'queued', 'queued']);

    // Run 3: SMTP works: the other two go; run 4: nothing more.
    await services.start({ https: false });
    const r3 = await run(v, 'run 3 (SMTP back)');
    assert.equal(r3.code, 0, show(r3));
    assert.ok(r3.lines.includes('mail: 2 sent'), show(r3));
    const r4 = await run(v, 'run 4');
    assert.equal(r4.code, 0, show(r4));
    await until(() => services.mails.length >= start + 3, 'three mails');
    await new Promise((r) => setTimeout(r, 200));
    const got = services.mails.slice(start);
    assert.equal(got.length, 3, got.map((m) => m.subject).join(' / '));
    const ids = byMessageId(got);
    assert.equal(ids.size, 3, 'three distinct Message-IDs');
    assert.ok([...ids.values()].every((n) => n === 1), 'each received exactly once');
    assert.deepEqual(got.map((m) => m.subject).sort(), queued1.map((m) => m.subject).sort());
    assert.ok(outbox(v).every((m) => m.state === 'sent'));
    await services.start();
  });

  // A deploy that fails (the host is down) leaves the certificate stored and says so; the
  // SPEC's `run` is "renew, fetch, deploy, then send": a later run should deploy it.
  /** A vault whose host1 certificate was stored by a run while host1's sshd was down. */
  const storedWhileDown = async (what: string): Promise<{ v: CronVault; cert: string; r: CronResult; mails: ReceivedMail[] }> => {
    const v = await siteVault();
    const drop = join(v.dir, 'drop');
    mkdirSync(drop);
    const reqDir = join(v.dir, 'req');
    mkdirSync(reqDir);
    await v.withShell(async (tv) => assert.equal(await tv.run(`crtreq ${h1.name} --out ${reqDir}`), 0, tv.io.text()));
    const cert = await ca.sign(join(reqDir, `${h1.fqdn}.req`), { days: 365, out: ca.path('host1-down.crt') });
    copyFileSync(cert, join(drop, 'host1.pem'));
    configure(v, { dir: drop, trust: ca.caCert });
    const start = services.mails.length;
    await site.stopSshd(h1);
    try {
      const r = await run(v, what);
      await until(() => services.mails.length >= start + 1, 'the warning mail').catch(() => undefined);
      return { v, cert, r, mails: services.mails.slice(start) };
    } finally {
      await site.startSshd(h1);
    }
  };

  let down: Awaited<ReturnType<typeof storedWhileDown>> | undefined;

  test('a deploy that fails (host down) is a FAILED line and a warning mail; the certificate is stored', async () => {
    down = await storedWhileDown('run (host1 down)');
    const { v, r, mails } = down;
    assert.equal(r.code, 1, show(r));
    assert.ok(r.lines.some((l) => l.startsWith(`stored the certificate for ${h1.fqdn}`)), show(r));
    assert.equal(failures(r).length, 1, show(r));
    assert.match(failures(r)[0]!, new RegExp(`^FAILED: deploy ${h1.fqdn}: .*ECONNREFUSED`), show(r));
    assert.deepEqual(certificates(v).map((c) => [c.fqdn, c.state, c.deployed_at]), [[h1.fqdn, 'current', null]]);
    assert.deepEqual(mails.map((m) => m.subject), [`passtore: WARNING: certificate for ${h1.fqdn} stored but not deployed`]);
  });

  let retriedMails: ReceivedMail[] | undefined;

  test('with no request open, the next run deploys the certificate stored earlier (retried)', async () => {
    assert.ok(down, 'the previous test left a stored, undeployed certificate');
    const start = services.mails.length;
    const r = await run(down.v, 'run (host1 back, no open request)');
    assert.equal(r.code, 0, show(r));
    assert.ok(r.lines.some((l) => l.startsWith(`${h1.fqdn}: deployed to ${CRT_DIR}`) && l.endsWith('(retried)')), show(r));
    await assertDeployed(down.v, h1, down.cert);
    await new Promise((res) => setTimeout(res, 200));
    retriedMails = services.mails.slice(start);
  });

  test('the retried deploy is announced by mail (the operators were told it had failed)', () => {
    assert.ok(retriedMails, 'the previous test ran');
    assert.ok(retriedMails.some((m) => m.subject.includes(h1.fqdn) && /deployed/.test(m.subject)), retriedMails.map((m) => m.subject).join(' / ') || 'no mail');
  });

  test('with another request open, the next run deploys the certificate stored earlier (retried), once', async () => {
    const { v, cert, r: first } = await storedWhileDown('run (host1 down, again)');
    assert.equal(first.code, 1, show(first));
    await v.withShell(async (tv) => assert.equal(await tv.run(`crtreq ${h2.name} --out ${v.dir}`), 0, tv.io.text()));
    const r = await run(v, 'run (host1 back, host2 waiting)');
    assert.equal(r.code, 0, show(r));
    assert.ok(r.lines.some((l) => l.startsWith(`${h1.fqdn}: deployed to ${CRT_DIR}`) && l.endsWith('(retried)')), show(r));
    await assertDeployed(v, h1, cert);
    const r2 = await run(v, 'run (nothing to redeploy)');
    assert.equal(r2.code, 0, show(r2));
    assert.ok(!r2.lines.some((l) => l.includes('(retried)')), show(r2));
  });

  /**
   * A site vault with host1's new certificate (`label` names its file) in a drop folder,
   * for a run held at its deploy step: the file whose existence releases it, and readers
   * of the guard markers and the run lease.
   */
  const heldDeploy = async (label: string) => {
    const v = await siteVault();
    const drop = join(v.dir, 'drop');
    mkdirSync(drop);
    const reqDir = join(v.dir, 'req');
    mkdirSync(reqDir);
    await v.withShell(async (tv) => assert.equal(await tv.run(`crtreq ${h1.name} --out ${reqDir}`), 0, tv.io.text()));
    const cert = await ca.sign(join(reqDir, `${h1.fqdn}.req`), { days: 365, out: ca.path(`host1-${label}.crt`) });
    copyFileSync(cert, join(drop, 'host1.pem'));
    const markers = () => readdirSync(join(v.dataHome, 'passtore')).filter((n) => n.startsWith('guard-open'));
    const lease = () => dbRows<{ token: string }>(v, "SELECT token FROM run_lease WHERE name = 'cron'")[0]?.token ?? '';
    return { v, drop, cert, hold: join(v.dir, 'release'), markers, lease };
  };
  for (const [signal, status] of [['SIGTERM', 143], ['SIGHUP', 129], ['SIGINT', 130]] as const) {
    test(`${signal} to a run held in the middle of a deploy: the deploy finishes, exit ${status}, the guard closed, no marker, the lease released`, async () => {
      const { v, drop, cert, hold, markers, lease } = await heldDeploy(signal);
      configure(v, { dir: drop, trust: ca.caCert });

      let child: ChildProcess | undefined;
      const running = runCron(['--config', v.configFile, 'run'], {
        ns: site.vaultNs,
        dataHome: v.dataHome,
        env: { PASSTORE_HOLD_AT: 'deploy-write-cert', PASSTORE_HOLD_FILE: hold },
        onSpawn: (c) => (child = c),
      });
      try {
        await until(() => existsSync(`${hold}.held`), 'the deploy to reach its held step', 60_000);
        // Held with the guard open to host1, its marker written, the lease taken.
        assert.equal((await site.vaultState()).linkUp, true, 'the guard is open while the deploy is held');
        assert.equal(markers().length, 1, 'the run has its guard marker');
        assert.notEqual(lease(), '', 'the run holds the lease');
        child!.kill(signal);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        writeFileSync(hold, '');
      }
      const r = await running;
      assert.equal(r.code, status, `exit status 128 + the signal's number\n${show(r)}`);
      assert.ok(r.lines.includes(`passtore-cron: ${signal}: stopping; what is in flight finishes, nothing new starts`), show(r));
      assert.ok(r.lines.some((l) => l.startsWith(`${h1.fqdn}: deployed to ${CRT_DIR}`)), `the deploy in flight finished\n${show(r)}`);
      await assertDeployed(v, h1, cert);
      await assertGuardClosed(site, `${signal} to a held run`);
      assert.deepEqual(markers(), [], 'no guard marker is left');
      assert.equal(lease(), '', 'the lease is released');
      // The next run is not kept out by a lease, and has no guard to recover.
      const next = await run(v, `run after ${signal}`);
      assert.equal(next.code, 0, show(next));
      assert.ok(!next.stdout.includes('another run holds the lease'), show(next));
    });
  }

  test('SIGTERM to the daemon while its scheduled run is held in the middle of a deploy: the deploy finishes, exit 0, the guard closed, no marker, the lease released', async () => {
    const { v, drop, cert, hold, markers, lease } = await heldDeploy('daemon');
    writeConfig(v, {
      smtp: { host: svc.address, port: SMTP_PORT, from: 'passtore@vault.site.test', insecure: 'yes' },
      ca: { dir: drop, trust: ca.caCert },
      // Every second: the first run finds the certificate, stores it and deploys it.
      extra: [...site.networkConfig(), '', '[schedule]', 'run = * * * * * *'],
    });
    let child: ChildProcess | undefined;
    const running = runCron(['--config', v.configFile, 'daemon'], {
      ns: site.vaultNs,
      dataHome: v.dataHome,
      env: { PASSTORE_HOLD_AT: 'deploy-write-cert', PASSTORE_HOLD_FILE: hold },
      onSpawn: (c) => (child = c),
      timeoutMs: 90_000,
    });
    try {
      await until(() => existsSync(`${hold}.held`), 'the scheduled run to reach its held deploy step', 60_000);
      assert.equal((await site.vaultState()).linkUp, true, 'the guard is open while the deploy is held');
      assert.equal(markers().length, 1, 'the run has its guard marker');
      assert.notEqual(lease(), '', 'the run holds the lease');
      child!.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      writeFileSync(hold, '');
    }
    const r = await running;
    assert.equal(r.code, 0, `the daemon stopped by SIGTERM exits 0\n${show(r)}`);
    assert.ok(r.lines.includes('passtore-cron: SIGTERM: stopping; what is in flight finishes, nothing new starts'), show(r));
    assert.equal(r.lines.filter((l) => l.startsWith(`${h1.fqdn}: deployed to ${CRT_DIR}`)).length, 1, `the deploy in flight finished, once\n${show(r)}`);
    await assertDeployed(v, h1, cert);
    await assertGuardClosed(site, 'SIGTERM to the daemon');
    assert.deepEqual(markers(), [], 'no guard marker is left');
    assert.equal(lease(), '', 'the lease is released');
  });
});
