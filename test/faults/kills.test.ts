/**
 * The fault suite's kill tests: every multi-step operation that runs without the network
 * site is killed (SIGKILL, by PASSTORE_CRASH_AT) at each of its named steps, in a child
 * process, then the vault is opened again and checked (harness.ts inspect): every
 * password readable with its old or its new value, every pending and past password too,
 * every key decrypting, being the key its row names and matching its certificates, each
 * request for its key, the audit chain verifying as the killed process left it, and no
 * half-written state. Then the operation is run again and must complete.
 *
 * - add, crtreq, importcert: kill-child.js (a real Session with scripted answers);
 * - rekey, backup, restore: the real `passtore` on a pseudo-terminal;
 * - passtore-cron run: the real binary, with the dir fetcher and an SMTP receiver on
 *   loopback (renew's request steps, cron-renewed, cron-fetched, mail-accepted).
 *
 * On SQLite; add, rekey and restore on MariaDB too (skipped outside CI without it).
 * Deploy and password-change steps are killed in test/remote (they need the site).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCopy } from '../../src/backup.js';
import { Secret } from '../../src/secret.js';
import { ADMIN, byMessageId, certifyHost, createCronVault, outbox, requests, runCron, show, writeConfig, type CronVault } from '../cron/helpers.js';
import { startSmtp, type ReceivedMail } from '../cron/servers.js';
import { mariadbSkip } from '../support/mariadb.js';
import { createTestVault, PASSPHRASE, removeTestDir, ScriptedIo, type TestVault } from '../support/scripted.js';
import { Session } from '../../src/session.js';
import { defaultConfig } from '../../src/config.js';
import { openStore } from '../../src/storage/open.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { endOfFile, fq, homeFor, inspect, newPlace, rootSpec, runChild, Shell, tableCounts, Tally, type Backend, type Expectation, type Place } from './harness.js';

const tally = new Tally('kills.test');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let ca: FixtureCa;
const mariadb = await mariadbSkip();
const backends: Array<{ backend: Backend; skip: string | false }> = [
  { backend: 'sqlite', skip: false },
  { backend: 'mariadb', skip: mariadb },
];

before(async () => {
  ca = await FixtureCa.create();
  cleanups.push(() => ca.remove());
});
after(() => endOfFile(tally, cleanups));

async function place(backend: Backend, name: string): Promise<Place> {
  const p = await newPlace(backend, name);
  cleanups.push(() => p.remove());
  return p;
}

async function ok(tv: TestVault, line: string, ...answers: string[]): Promise<void> {
  tv.io.lines.length = 0;
  assert.equal(await tv.run(line, ...answers), 0, `${line}: ${tv.io.text()}`);
}

/** Creates a test vault on `p`, runs `fn` on it, closes it. */
async function onVault(p: Place, fn: (tv: TestVault) => Promise<void>): Promise<void> {
  const tv = await createTestVault({ db: p.db, dbPasswordFile: p.passwordFile });
  try {
    await fn(tv);
  } finally {
    await tv.close();
    removeTestDir(tv);
  }
}

/** Checks `p` against `want`; returns the inspection (the test fails on any problem). */
async function sound(p: Pick<Place, 'db' | 'passwordFile'>, want: Expectation, when: string) {
  const i = await inspect(p, want);
  assert.deepEqual(tally.record(i), [], `${when}: the vault is sound`);
  return i;
}

const PW = (n: number | string) => `Fault-Pw-${n}-q7x`;
const PENDING = 'Fault-Pw-2-pending-k3';

/**
 * A vault with something of every kind: four hosts with root passwords, one updated (a
 * history version), one with a pending change, one with an open request (pending key)
 * and one with a certificate and its key.
 */
async function richVault(p: Place): Promise<Expectation> {
  await onVault(p, async (tv) => {
    await ok(tv, 'host add ui-01');
    await ok(tv, 'host add ui-02 --address 127.0.0.1 --port 1');
    await ok(tv, 'host add ui-03');
    await ok(tv, 'host add ui-04');
    for (const n of [1, 2, 3, 4]) await ok(tv, `add ui-0${n}`, PW(n), PW(n));
    await ok(tv, 'update ui-01 --local', PW(1), PW('1b'), PW('1b'));
    const e = (await tv.session.store.getEntry(fq('ui-02'), 'root', 'ssh'))!;
    const version = e.version + 1;
    await tv.session.vault.transaction((tx) => tx.setPending(e.id, tv.session.vault.sealPassword({ fqdn: e.fqdn, user: 'root', service: 'ssh', version }, Secret.fromString(PENDING)), version, new Date().toISOString()));
    await ok(tv, 'crtreq ui-03 --type ec-p256');
    const reqs = join(p.dir, 'requests');
    mkdirSync(reqs, { recursive: true });
    await ok(tv, `crtreq ui-04 --type ec-p256 --out ${reqs}`);
    const cert = await ca.sign(join(reqs, `${fq('ui-04')}.req`), { days: 90 });
    await ok(tv, `getcrt ${cert}`);
  });
  return {
    passwords: { [rootSpec('ui-01')]: [PW('1b')], [rootSpec('ui-02')]: [PW(2)], [rootSpec('ui-03')]: [PW(3)], [rootSpec('ui-04')]: [PW(4)] },
    history: { [rootSpec('ui-01')]: [PW(1)] },
    pending: { [rootSpec('ui-02')]: PENDING },
  };
}

function killed(what: string, r: { signal: NodeJS.Signals | null; code: number | null; out: string }): void {
  assert.equal(r.signal, 'SIGKILL', `${what} was killed at its step:\n${r.out}`);
}

function tried(operation: string, step: string, backend: Backend): void {
  tally.kills.push({ operation, step, backend });
}

// ---------------------------------------------------------------------------------------

// summary-before-seal: the entries are written, the summary of what is current not yet moved.
for (const [{ backend, skip }, step] of backends.flatMap((b) => ['add-in-transaction', 'summary-before-seal'].map((st) => [b, st] as const))) {
  test(`add (${backend}) killed inside its transaction at ${step}: nothing of it stored, the summary of what is current as before; the retry stores all`, { skip }, async () => {
    const p = await place(backend, `add-${step}`);
    await onVault(p, async (tv) => {
      for (const h of ['ui-01', 'ui-02', 'ui-03', 'ui-04']) await ok(tv, `host add ${h}`);
      await ok(tv, 'add ui-01', PW(1), PW(1));
      // ui-04 has a placeholder entry (as importcert leaves): add fills it in place.
      const host = (await tv.session.store.getHost(fq('ui-04')))!;
      await tv.session.context.change((tx) => tx.insertEntry({ hostId: host.id, user: 'root', service: 'ssh', version: 1, state: 'unset', secretCiphertext: null, updatedAt: new Date().toISOString(), updatedBy: 'alice' }));
    });
    tried('add', step, backend);
    killed('add', await runChild(p, step, 'add ui-0*', ['y', PW('new'), PW('new')]));
    const left = await sound(p, { passwords: { [rootSpec('ui-01')]: [PW(1)], [rootSpec('ui-02')]: [null], [rootSpec('ui-03')]: [null], [rootSpec('ui-04')]: [null] } }, 'after the kill');
    assert.equal(left.counts.set, 1, 'the killed add stored no password');
    assert.equal(left.counts.entries, 2, 'nor an entry (ui-01, and the placeholder of ui-04)');
    assert.equal(left.auditTrail.filter((a) => a.startsWith('add ok')).length, 1, 'and no audit record of it');

    const again = await runChild(p, 'none', 'add ui-0*', ['y', PW('new'), PW('new')]);
    assert.equal(again.code, 0, again.out);
    const done = await sound(p, { passwords: { [rootSpec('ui-01')]: [PW(1)], [rootSpec('ui-02')]: [PW('new')], [rootSpec('ui-03')]: [PW('new')], [rootSpec('ui-04')]: [PW('new')] } }, 'after the retry');
    assert.equal(done.auditTrail.filter((a) => a.startsWith('add ok')).length, 4);
    tally.killsSurvived++;
  });
}

for (const step of ['request-key-made', 'request-in-transaction']) {
  test(`crtreq killed at ${step}: the earlier open request and its key stay, no new key, no request file; the retry completes`, async () => {
    const p = await place('sqlite', `crtreq-${step}`);
    const out = join(p.dir, 'out');
    mkdirSync(out, { recursive: true });
    await onVault(p, async (tv) => {
      for (const h of ['ui-01', 'ui-02']) await ok(tv, `host add ${h}`);
      await ok(tv, 'add ui-01', PW(1), PW(1));
      await ok(tv, 'crtreq ui-02 --type ec-p256');
    });
    const before = await sound(p, {}, 'before');
    tried('crtreq', step, 'sqlite');
    killed('crtreq', await runChild(p, step, `crtreq ui-0* --type ec-p256 --replace --out ${out}`));
    const left = await sound(p, { passwords: { [rootSpec('ui-01')]: [PW(1)] } }, 'after the kill');
    assert.deepEqual([left.counts.keys, left.counts.requests, left.counts.openRequests], [before.counts.keys, before.counts.requests, 1], 'no key or request of the killed run; the earlier request still open');
    const files = () => readdirSync(out).filter((n) => !n.startsWith('.'));
    assert.deepEqual(files(), [], 'no request file for a request the vault does not hold');

    const again = await runChild(p, 'none', `crtreq ui-0* --type ec-p256 --replace --out ${out}`);
    assert.equal(again.code, 0, again.out);
    const done = await sound(p, { passwords: { [rootSpec('ui-01')]: [PW(1)] } }, 'after the retry');
    assert.equal(done.counts.openRequests, 2, 'one open request per host');
    assert.equal(done.counts.requests, 3, 'the earlier request of ui-02 cancelled, kept');
    // Each request file is the vault's open request for its host.
    assert.deepEqual(files().sort(), [`${fq('ui-01')}.req`, `${fq('ui-02')}.req`]);
    const store = await openStore(p.db);
    try {
      for (const h of ['ui-01', 'ui-02']) {
        const [r] = await store.openRequests(fq(h));
        assert.equal(readFileSync(join(out, `${fq(h)}.req`), 'utf8'), r!.pem);
      }
    } finally {
      await store.close();
    }
    tally.killsSurvived++;
  });
}

test('importcert killed halfway through its transaction: all or nothing; the retry imports every pair', async () => {
  const p = await place('sqlite', 'importcert');
  await onVault(p, async (tv) => {
    await ok(tv, 'host add ui-01');
    await ok(tv, 'add ui-01', PW(1), PW(1));
  });
  const dir = join(p.dir, 'import');
  mkdirSync(dir);
  for (const h of ['im-01', 'im-02', 'im-03', 'im-04']) {
    const key = await ca.genKey('ec-p256', join(dir, `${h}.key`));
    await ca.issue(key, fq(h), { out: join(dir, `${h}.crt`) });
  }
  const before = await sound(p, {}, 'before');
  tried('importcert', 'importcert-in-transaction', 'sqlite');
  killed('importcert', await runChild(p, 'importcert-in-transaction', `importcert ${dir}`));
  const left = await sound(p, { passwords: { [rootSpec('ui-01')]: [PW(1)] } }, 'after the kill');
  assert.deepEqual(
    [left.counts.hosts, left.counts.entries, left.counts.keys, left.counts.certificates],
    [before.counts.hosts, before.counts.entries, 0, 0],
    'no host, placeholder, key or certificate of the killed import',
  );
  const again = await runChild(p, 'none', `importcert ${dir}`);
  assert.equal(again.code, 0, again.out);
  const done = await sound(p, { passwords: { [rootSpec('ui-01')]: [PW(1)] } }, 'after the retry');
  assert.deepEqual([done.counts.hosts, done.counts.entries, done.counts.keys, done.counts.certificates], [5, 5, 4, 4], 'every pair, its host and its placeholder');
  tally.killsSurvived++;
});

for (const { backend, skip } of backends) {
  test(`rekey (${backend}) killed inside its transaction, in the real shell: the old data key still opens everything; the next rekey completes`, { skip }, async () => {
    const p = await place(backend, 'rekey');
    const want = await richVault(p);
    const before = await sound(p, want, 'before');
    const home = homeFor(p);
    cleanups.push(() => home.remove());
    tried('rekey', 'rekey-in-transaction', backend);
    const sh = new Shell([], { ...home.env, PASSTORE_CRASH_AT: 'rekey-in-transaction' });
    cleanups.push(() => sh.kill());
    await sh.unlock();
    await sh.command('rekey', ['y'], { dies: true });
    assert.equal(sh.exit?.signal, 9, sh.screen);
    const left = await sound(p, want, 'after the kill');
    assert.equal(left.generation, before.generation, 'the data key generation did not move');

    const again = new Shell([], home.env);
    cleanups.push(() => again.kill());
    await again.unlock();
    const out = await again.command('rekey', ['y']);
    assert.match(out, /rekeyed: \d+ secrets re-encrypted under a new data key/);
    assert.match(await again.command('audit --verify'), /audit trail intact/);
    await again.close();
    const done = await sound(p, want, 'after the rekey');
    assert.equal(done.generation, before.generation + 1);
    tally.killsSurvived++;
  });
}

/** The copies and leftovers on a medium; every copy must verify against its manifest. */
function medium(dir: string): { copies: string[]; partials: string[] } {
  const names = readdirSync(dir);
  const copies = names.filter((n) => n.startsWith('passtore-'));
  for (const c of copies) verifyCopy(join(dir, c)); // throws, naming the file, if not complete
  return { copies, partials: names.filter((n) => n.endsWith('.partial')) };
}

/** `passtore restore MEDIA` on a pty into `target`; returns the shell once it ended. */
async function restoreShell(target: Place, media: string, env: Record<string, string> = {}): Promise<Shell> {
  const home = homeFor(target);
  cleanups.push(() => home.remove());
  const sh = new Shell(['restore', media], { ...home.env, ...env });
  cleanups.push(() => sh.kill());
  const prompt = await sh.expect(/Passphrase for alice \(of the backup\): $/).then(
    () => true,
    () => false,
  );
  if (prompt) {
    await new Promise((r) => setTimeout(r, 30));
    sh.line(PASSPHRASE);
  }
  await sh.exited(30_000);
  return sh;
}

for (const step of ['backup-written', 'backup-renamed']) {
  test(`backup killed at ${step}, in the real shell: a copy is complete and restorable or there is none; a .partial left over is ignored`, async () => {
    const p = await place('sqlite', `backup-${step}`);
    const want = await richVault(p);
    const media = join(p.dir, 'media');
    mkdirSync(media);
    const home = homeFor(p);
    cleanups.push(() => home.remove());
    tried('backup', step, 'sqlite');
    const sh = new Shell([], { ...home.env, PASSTORE_CRASH_AT: step });
    cleanups.push(() => sh.kill());
    await sh.unlock();
    await sh.command(`backup ${media}`, [], { dies: true });
    assert.equal(sh.exit?.signal, 9, sh.screen);
    const left = medium(media);
    assert.deepEqual([left.copies.length, left.partials.length], step === 'backup-written' ? [0, 1] : [1, 0], readdirSync(media).join(' '));
    const source = await sound(p, want, 'the vault after the kill');
    assert.ok(!source.auditTrail.some((a) => a.startsWith('backup ok')), 'no record of a backup that did not finish');

    const target = await place('sqlite', `backup-${step}-target`);
    const first = await restoreShell(target, media);
    if (step === 'backup-written') {
      assert.equal(first.exit?.code, 1, first.screen);
      assert.match(first.screen, /no passtore backup in it/);
      assert.deepEqual(readdirSync(target.dir), [], 'nothing written from a .partial');
    } else {
      assert.equal(first.exit?.code, 0, first.screen);
      await sound(target, want, 'restored from the copy the killed backup left');
    }

    // The next backup writes a complete copy beside what is left; restore takes it.
    const again = new Shell([], home.env);
    cleanups.push(() => again.kill());
    await again.unlock();
    assert.match(await again.command(`backup ${media}`), /written, read back, verified/);
    await again.close();
    const now = medium(media);
    assert.equal(now.copies.length, left.copies.length + 1);
    const target2 = await place('sqlite', `backup-${step}-target2`);
    const second = await restoreShell(target2, media);
    assert.equal(second.exit?.code, 0, second.screen);
    assert.match(second.screen, /audit trail verified/);
    await sound(target2, want, 'restored from the next copy');
    tally.killsSurvived++;
  });
}

for (const { backend, skip } of backends) {
  test(`restore (${backend}) killed inside its transaction, in the real binary: the target stays empty; the next restore completes`, { skip }, async () => {
    const source = await place('sqlite', 'restore-source');
    const want = await richVault(source);
    const media = join(source.dir, 'media');
    mkdirSync(media);
    {
      const io = new ScriptedIo();
      io.answers.push(PASSPHRASE);
      const s = await Session.open({ config: { ...defaultConfig(), domain: 'example.org', db: source.db, operator: 'alice' }, prompt: io, out: io, terminal: true, operator: 'alice', stateDir: source.dir });
      await s.unlock(1);
      assert.equal(await s.execute(`backup ${media}`), 0, io.text());
      await s.close();
    }
    const manifest = JSON.parse(readFileSync(join(media, medium(media).copies[0]!, 'manifest.json'), 'utf8')) as { rows: Record<string, number> };
    const target = await place(backend, 'restore-target');
    tried('restore', 'restore-in-transaction', backend);
    const sh = await restoreShell(target, media, { PASSTORE_CRASH_AT: 'restore-in-transaction' });
    assert.equal(sh.exit?.signal, 9, sh.screen);
    const counts = await tableCounts(target);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    assert.equal(total, 0, `the target is empty, not half-restored: ${JSON.stringify(counts)}`);

    const again = await restoreShell(target, media);
    assert.equal(again.exit?.code, 0, again.screen);
    assert.match(again.screen, /audit trail verified/);
    const after = await tableCounts(target);
    for (const [t, n] of Object.entries(manifest.rows)) {
      if (t !== 'audit') assert.equal(after[t], n, `${t}: every row of the copy`);
    }
    await sound(target, want, 'the restored vault');
    tally.killsSurvived++;
  });
}

// ---------------------------------------------------------------------------------------
// passtore-cron run

describe('passtore-cron run killed at each of its steps (dir fetcher, SMTP receiver on loopback)', () => {
  async function setup(name: string) {
    const mails: ReceivedMail[] = [];
    const smtp = await startSmtp({ host: '127.0.0.1', onMail: (m) => mails.push(m) });
    cleanups.push(() => smtp.close());
    const cv = await createCronVault({ domain: 'example.org', hosts: [{ name: 'ui-01', rootPassword: PW(1) }, { name: 'ui-02', rootPassword: PW(2) }] });
    cleanups.push(() => rmSync(cv.dir, { recursive: true, force: true }));
    await certifyHost(cv, ca, 'ui-01', 10);
    await certifyHost(cv, ca, 'ui-02', 10);
    const drop = join(cv.dir, `drop-${name}`);
    mkdirSync(drop);
    writeConfig(cv, { smtp: { host: '127.0.0.1', port: smtp.port, from: 'passtore@example.org', insecure: 'yes' }, ca: { dir: drop, trust: ca.caCert } });
    return { cv, mails, drop };
  }

  const cronPlace = (cv: CronVault) => ({ db: `sqlite:${cv.dbPath}`, passwordFile: undefined });
  const cronWant: Expectation = { passwords: { [rootSpec('ui-01')]: [PW(1)], [rootSpec('ui-02')]: [PW(2)] } };
  const run = (cv: CronVault, env: Record<string, string> = {}) => runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome, env });

  /** Every outbox row sent, each received, none more than twice; returns the Message-IDs received twice. */
  function mailsDelivered(cv: CronVault, mails: ReceivedMail[]): string[] {
    const rows = outbox(cv);
    const seen = byMessageId(mails);
    tally.mailsChecked += rows.length;
    const unsent = rows.filter((m) => m.state !== 'sent');
    const lost = rows.filter((m) => ![...seen.keys()].some((id) => id.startsWith(`<passtore-outbox-${m.id}-`)));
    tally.mailsLost += unsent.length + lost.length;
    assert.deepEqual(unsent.map((m) => m.subject), [], 'nothing left queued');
    assert.deepEqual(lost.map((m) => m.subject), [], 'every queued message reached the receiver');
    const twice = [...seen].filter(([, n]) => n > 1);
    assert.ok(twice.every(([, n]) => n === 2), 'a message goes at most twice');
    tally.duplicateMails += twice.length;
    assert.ok(mails.every((m) => m.to.includes(ADMIN)));
    return twice.map(([id]) => id);
  }

  for (const step of ['request-key-made', 'request-in-transaction', 'cron-renewed']) {
    test(`killed at ${step}: ${step === 'cron-renewed' ? 'the requests and their mails committed together' : 'no request and no mail of it'}; the next run mails each request once`, async () => {
      const { cv, mails } = await setup(step);
      tried('passtore-cron run', step, 'sqlite');
      const r = await run(cv, { PASSTORE_CRASH_AT: step });
      assert.equal(r.signal, 'SIGKILL', show(r));
      const left = await sound(cronPlace(cv), cronWant, 'after the kill');
      const open = requests(cv).filter((q) => q.state === 'created' || q.state === 'sent');
      assert.equal(open.length, step === 'cron-renewed' ? 2 : 0, 'renew commits each request with its mail, or nothing');
      assert.equal(outbox(cv).filter((m) => m.subject.startsWith('passtore: certificate request for')).length, open.length, 'a queued request mail for each open request, no more');
      assert.equal(left.counts.openRequests, open.length);
      assert.equal(mails.length, 0, 'nothing was sent before the kill');

      const again = await run(cv);
      assert.equal(again.code, 0, show(again));
      await sound(cronPlace(cv), cronWant, 'after the next run');
      assert.equal(requests(cv).filter((q) => q.state === 'sent').length, 2, 'one request per expiring certificate, marked sent');
      const subjects = mails.map((m) => m.subject).filter((s) => s.startsWith('passtore: certificate request for')).sort();
      assert.deepEqual(subjects, [`passtore: certificate request for ${fq('ui-01')}`, `passtore: certificate request for ${fq('ui-02')}`], 'each request mailed exactly once');
      assert.deepEqual(mailsDelivered(cv, mails), [], 'nothing went twice');
      tally.killsSurvived++;
    });
  }

  test('killed at mail-accepted: the accepted message is sent again with the same Message-ID (at-least-once), the rest once', async () => {
    const { cv, mails } = await setup('mail-accepted');
    tried('passtore-cron run', 'mail-accepted', 'sqlite');
    const r = await run(cv, { PASSTORE_CRASH_AT: 'mail-accepted' });
    assert.equal(r.signal, 'SIGKILL', show(r));
    assert.equal(mails.length, 1, 'the server accepted one message before the kill');
    const first = mails[0]!.messageId;
    const stillQueued = outbox(cv).filter((m) => m.state === 'queued');
    assert.equal(stillQueued.length, outbox(cv).length, 'the accepted one was not marked sent: it is retried');
    await sound(cronPlace(cv), cronWant, 'after the kill');

    const again = await run(cv);
    assert.equal(again.code, 0, show(again));
    await sound(cronPlace(cv), cronWant, 'after the next run');
    assert.deepEqual(mailsDelivered(cv, mails), [first], 'only the message accepted before the kill went twice, with the same Message-ID');
    tally.killsSurvived++;
  });

  test('killed at cron-fetched: the stored certificate stays current with its key; the next run retries the deploy and sends the mail once', async () => {
    const { cv, mails, drop } = await setup('cron-fetched');
    const first = await run(cv);
    assert.equal(first.code, 0, show(first));
    const req = requests(cv).find((q) => q.fqdn === fq('ui-01') && q.state === 'sent')!;
    const reqFile = join(cv.dir, 'ui-01.req');
    writeFileSync(reqFile, req.pem);
    const signed = await ca.sign(reqFile, { days: 90 });
    writeFileSync(join(drop, 'issued.pem'), readFileSync(signed));
    const before = mails.length;
    tried('passtore-cron run', 'cron-fetched', 'sqlite');
    const r = await run(cv, { PASSTORE_CRASH_AT: 'cron-fetched' });
    assert.equal(r.signal, 'SIGKILL', show(r));
    assert.equal(mails.length, before, 'no mail before the kill');
    const left = await sound(cronPlace(cv), cronWant, 'after the kill');
    assert.equal(left.counts.openRequests, 1, 'ui-01 fulfilled, ui-02 still open');
    assert.ok(outbox(cv).some((m) => m.state === 'queued' && m.subject.includes(fq('ui-01'))), 'the deploy warning waits in the outbox');

    const again = await run(cv);
    // The host has no address here: the deploy is retried, fails, and says so (status 1).
    assert.match(again.stdout, /deploy ui-01\.example\.org \(retried\)/, show(again));
    await sound(cronPlace(cv), cronWant, 'after the next run');
    const store = await openStore(`sqlite:${cv.dbPath}`);
    try {
      const current = await store.currentCertificates(fq('ui-01'));
      assert.equal(current.length, 1);
      assert.ok(Date.parse(current[0]!.notAfter) > Date.now() + 60 * 86_400_000, 'the new certificate is current');
    } finally {
      await store.close();
    }
    assert.deepEqual(readdirSync(join(cv.dataHome, 'passtore', 'ca-drop', 'done')), ['issued.pem'], 'the delivery was settled once');
    assert.deepEqual(mailsDelivered(cv, mails), [], 'nothing went twice');
    tally.killsSurvived++;
  });
});
