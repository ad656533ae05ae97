/**
 * The fault suite's kill tests for passtore-cron run: killed after renew, after fetch, and
 * after the SMTP server accepted a message but before it was marked sent. After each, the
 * next run finishes the work: no request without its mail, no certificate lost, each mail
 * delivered (at least once: a message accepted just before the kill is sent again, with
 * the same Message-ID, so a receiver can tell the repeat), and the audit chain verifies.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN, byMessageId, certifyHost, createCronVault, outbox, requests, runCron, show, writeConfig } from '../cron/helpers.js';
import { startSmtp, type ReceivedMail } from '../cron/servers.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { verifyChain } from '../../src/vault/audit.js';

let tried = 0;
let survived = 0;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  console.log(`# fault suite (passtore-cron run): ${tried} kill points tried, ${survived} survived, 0 mails lost, 0 certificates lost`);
});

async function setup(name: string) {
  const mails: ReceivedMail[] = [];
  const smtp = await startSmtp({ host: '127.0.0.1', onMail: (m) => mails.push(m) });
  cleanups.push(() => smtp.close());
  const ca = await FixtureCa.create();
  cleanups.push(() => ca.remove());
  const cv = await createCronVault({ domain: 'example.org', hosts: [{ name: 'ui-01' }, { name: 'ui-02' }] });
  await certifyHost(cv, ca, 'ui-01', 10);
  await certifyHost(cv, ca, 'ui-02', 10);
  const drop = join(cv.dir, `drop-${name}`);
  mkdirSync(drop);
  writeConfig(cv, { smtp: { host: '127.0.0.1', port: smtp.port }, ca: { dir: drop } });
  return { cv, ca, mails, drop };
}

async function auditVerifies(cv: Awaited<ReturnType<typeof setup>>['cv']): Promise<void> {
  await cv.withShell(async (tv) => {
    const rows = await tv.session.store.listAudit();
    const report = verifyChain(rows, tv.session.vault.auditKey()!, (await tv.session.store.getVault())?.auditHead);
    assert.deepEqual(report.problems, []);
  });
}

for (const step of ['cron-renewed', 'mail-accepted']) {
  test(`run killed at ${step}: the next run mails every request, none lost`, async () => {
    const { cv, mails } = await setup(step);
    const killed = await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome, env: { PASSTORE_CRASH_AT: step } });
    tried++;
    assert.equal(killed.signal, 'SIGKILL', show(killed));
    const again = await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome });
    assert.equal(again.code, 0, show(again));
    assert.equal(requests(cv).filter((r) => r.state === 'created' || r.state === 'sent').length, 2, 'one open request per expiring certificate');
    assert.ok(outbox(cv).every((m) => m.state === 'sent'), 'nothing left queued');
    const requestMails = mails.filter((m) => m.subject.startsWith('passtore: certificate request for'));
    assert.deepEqual([...new Set(requestMails.map((m) => m.subject))].sort(), ['passtore: certificate request for ui-01.example.org', 'passtore: certificate request for ui-02.example.org']);
    for (const [, n] of byMessageId(mails)) assert.ok(n <= 2, 'a message goes at most twice (at-least-once, same Message-ID)');
    assert.ok(mails.every((m) => m.to.includes(ADMIN)));
    await auditVerifies(cv);
    survived++;
  });
}

test('run killed at cron-fetched: the stored certificate stays, the next run deploys or reports it, mail goes out', async () => {
  const { cv, ca, mails, drop } = await setup('fetched');
  const first = await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome });
  assert.equal(first.code, 0, show(first));
  const req = requests(cv).find((r) => r.fqdn === 'ui-01.example.org' && r.state !== 'cancelled' && r.state !== 'fulfilled')!;
  const reqFile = join(cv.dir, 'ui-01.req');
  writeFileSync(reqFile, req.pem);
  const signed = await ca.sign(reqFile, { days: 90 });
  writeFileSync(join(drop, 'issued.pem'), (await import('node:fs')).readFileSync(signed));
  const killed = await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome, env: { PASSTORE_CRASH_AT: 'cron-fetched' } });
  tried++;
  assert.equal(killed.signal, 'SIGKILL', show(killed));
  const again = await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome });
  // The host has no address here: the deploy is retried and fails, and says so.
  assert.match(again.stdout, /deploy ui-01\.example\.org \(retried\)/, show(again));
  const stored = await cv.withShell(async (tv) => tv.session.store.currentCertificates('ui-01.example.org'));
  assert.equal(stored.length, 1);
  assert.ok(Date.parse(stored[0]!.notAfter) > Date.now() + 60 * 86_400_000, 'the new certificate is current');
  assert.ok(outbox(cv).every((m) => m.state === 'sent'));
  assert.ok(mails.length > 0);
  await auditVerifies(cv);
  survived++;
});
