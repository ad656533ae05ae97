/**
 * Side by side (issue 15): several passtore-cron processes and shells on one vault. The
 * real passtore-cron binary runs as concurrent child processes on a real SQLite vault, with
 * a real SMTP receiver (smtp-server) in this process. Shown here:
 *
 * - three `renew` started at once for one due host: one new key, one open request, one
 *   request mail queued (the run lease lets one act at a time; the next finds the open
 *   request); three `send` at once: each queued mail reaches the server exactly once;
 * - a second run while one holds the lease says one line and exits 0; a run killed while
 *   holding the lease is taken over once the lease expired; `check` answers meanwhile;
 * - a `rekey` in a shell while `renew` stands between making its key and storing it (held
 *   at the request-key-made step): the key is stored under the new data key, every secret
 *   opens with it;
 * - no admin_email: renew refuses before making any key; SMTP down for three runs: each run
 *   and check report the unmailed request (WARNING), the fourth run mails it once;
 * - the vault refuses a seal outside vault.transaction, and a transaction opened after
 *   another session's rekey seals under the new key;
 * - on MariaDB: three renew at once with a rekey while one is held, three send at once, and
 *   a run on another "machine" (its own pid namespace, unshare) holding the lease: a run
 *   here, where that pid is no process, waits for it instead of taking the lease over.
 *   (Both machines share this network namespace: MariaDB listens on 127.0.0.1 only.)
 * - on MariaDB with the second machine in its own network namespace (ip netns, only its
 *   loopback; a relay there forwards 127.0.0.1:PORT to the server's unix socket and to a
 *   unix socket bridged to the SMTP receiver here): three renew split between the machines
 *   give one new key, one open request, one request mail queued; three send split between
 *   them deliver each queued mail exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultConfig } from '../../src/config.js';
import { Secret } from '../../src/secret.js';
import { Session } from '../../src/session.js';
import { openStore } from '../../src/storage/open.js';
import { Vault } from '../../src/vault/vault.js';
import Database from 'better-sqlite3';
import { createTestDatabase, mariadbSkip, privateMariadb, type TestDatabase } from '../support/mariadb.js';
import { createTestVault, PASSPHRASE, ScriptedIo } from '../support/scripted.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { byMessageId, certifyHost, createCronVault, CRON_BIN, dbRows, outbox, runCron, show, until, writeConfig, type CronResult, type CronVault } from './helpers.js';
import { startSmtp, type ReceivedMail, type RunningSmtp } from './servers.js';

const DOMAIN = 'site.test';
const fq = (name: string): string => `${name}.${DOMAIN}`;
const execFileP = promisify(execFile);

const work = mkdtempSync(join(tmpdir(), 'passtore-side-'));
const ca = await FixtureCa.create();
const mails: ReceivedMail[] = [];
let smtp: RunningSmtp;
const vaults: CronVault[] = [];

before(async () => {
  smtp = await startSmtp({ host: '127.0.0.1', onMail: (m) => mails.push(m) });
});

after(async () => {
  await smtp?.close();
  for (const v of vaults) rmSync(v.dir, { recursive: true, force: true });
  ca.remove();
  rmSync(work, { recursive: true, force: true });
});

/** A vault whose host `a` has a certificate due for renewal (10 days left, crt_ttl 30). */
async function dueVault(): Promise<CronVault> {
  const v = await createCronVault({ domain: DOMAIN, hosts: [{ name: 'a' }] });
  vaults.push(v);
  await certifyHost(v, ca, 'a', 10);
  return v;
}

const smtpSection = (port = smtp.port) => ({ host: '127.0.0.1', port, from: 'passtore@vault.site.test', insecure: 'yes' });
const cron = (v: CronVault, args: string[], env: Record<string, string> = {}): Promise<CronResult> => runCron(['--config', v.configFile, ...args], { dataHome: v.dataHome, env });
const keys = (v: CronVault) => dbRows<{ state: string }>(v, 'SELECT state FROM private_keys ORDER BY id');
const openRequests = (v: CronVault) => dbRows(v, "SELECT id FROM cert_requests WHERE state IN ('created', 'sent')");

/** A passtore-cron process left running (the caller ends it). */
function spawnCron(v: CronVault, args: string[], env: Record<string, string>): ChildProcess {
  const full: NodeJS.ProcessEnv = { ...process.env, PASSTORE_SCRYPT_LOG_N: '14', XDG_DATA_HOME: v.dataHome, ...env };
  delete full.PASSTORE_CONFIG;
  delete full.NODE_OPTIONS;
  delete full.NODE_TEST_CONTEXT;
  return spawn(process.execPath, [CRON_BIN, '--config', v.configFile, ...args], { env: full, stdio: 'ignore' });
}

/** A TCP port nothing listens on (SMTP down: connections refused). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Opens every secret of the vault with the key file, as passtore-cron would. */
async function everySecretOpens(v: CronVault): Promise<{ generation: number; opened: number }> {
  const store = await openStore(`sqlite:${v.dbPath}`, undefined, { create: false });
  try {
    const vault = (await Vault.load(store))!;
    await vault.unlockWithKeyfile(v.keyfile);
    const { entries, history, keys: all } = await store.allSecrets();
    let opened = 0;
    for (const k of all) {
      vault.openKey(k).fill(0);
      opened++;
    }
    for (const e of [...entries, ...history]) {
      if (!e.secretCiphertext) continue;
      vault.openPassword(e).wipe();
      opened++;
    }
    vault.lock();
    return { generation: (await store.getVault())!.dataKeyGeneration, opened };
  } finally {
    await store.close();
  }
}

describe('concurrent runs', () => {
  test('three renew at once for one due host: one new key, one open request, one request mail queued', async () => {
    const v = await dueVault();
    writeConfig(v, { smtp: smtpSection(), top: { lease_wait: 60 } });
    const keysBefore = keys(v).length;
    const runs = await Promise.all([1, 2, 3].map(() => cron(v, ['renew'])));
    for (const r of runs) assert.equal(r.code, 0, show(r));
    assert.equal(keys(v).length, keysBefore + 1, 'exactly one new key');
    assert.equal(keys(v).filter((k) => k.state === 'pending').length, 1);
    assert.equal(openRequests(v).length, 1, 'exactly one open request');
    assert.equal(outbox(v).filter((m) => m.dedupe_key?.startsWith('request:')).length, 1, 'one request mail queued');
    assert.equal(runs.filter((r) => r.lines.some((l) => /^renew a\.site\.test: new .* key and request/.test(l))).length, 1, runs.map(show).join('\n'));
  });

  test('three send at once: each queued mail reaches the SMTP server exactly once', async () => {
    const v = await dueVault();
    writeConfig(v, { smtp: smtpSection(), top: { lease_wait: 60 } });
    // Queue a few mails: a request, reminders, and some of a shell's own.
    assert.equal((await cron(v, ['renew'])).code, 0);
    const store = await openStore(`sqlite:${v.dbPath}`, undefined, { create: false });
    try {
      for (let i = 0; i < 4; i++) await store.queueMail({ dedupeKey: `test:${i}`, recipients: ['ops@site.test'], subject: `side by side ${i}`, body: 'x', attachments: [] });
    } finally {
      await store.close();
    }
    const queued = outbox(v).filter((m) => m.state === 'queued');
    assert.ok(queued.length >= 5, JSON.stringify(queued));
    const from = mails.length;
    const runs = await Promise.all([1, 2, 3].map(() => cron(v, ['send'])));
    for (const r of runs) assert.equal(r.code, 0, show(r));
    await until(() => mails.length - from >= queued.length, 'the mails');
    await new Promise((r) => setTimeout(r, 300));
    const counts = byMessageId(mails.slice(from));
    assert.equal(counts.size, queued.length, 'every queued mail arrived');
    assert.ok([...counts.values()].every((n) => n === 1), `each exactly once: ${JSON.stringify([...counts])}`);
    assert.equal(outbox(v).filter((m) => m.state === 'queued').length, 0);
  });

  test('a claimed mail is not claimed again until its claim lapses', async () => {
    const v = await dueVault();
    const store = await openStore(`sqlite:${v.dbPath}`, undefined, { create: false });
    try {
      await store.queueMail({ dedupeKey: 'claim-test', recipients: ['ops@site.test'], subject: 'claim', body: 'x', attachments: [] });
      const [m] = await store.unsentMail();
      const t0 = Date.now();
      const iso = (ms: number) => new Date(t0 + ms).toISOString();
      assert.equal(await store.claimMail(m!.id, 'one', iso(60_000), iso(0)), true);
      assert.equal(await store.claimMail(m!.id, 'two', iso(60_000), iso(1000)), false, 'held by one');
      assert.equal(await store.claimMail(m!.id, 'two', iso(180_000), iso(61_000)), true, 'one died: its claim lapsed');
      await store.markMailSent(m!.id, iso(62_000));
      assert.equal(await store.claimMail(m!.id, 'three', iso(400_000), iso(300_000)), false, 'a sent mail is never claimed');
    } finally {
      await store.close();
    }
  });
});

describe('a shell beside cron', () => {
  test('crtreq in a shell while renew stands between its key and its request: one open request, one new key; crtreq asks before replacing it', async () => {
    const v = await dueVault();
    const hold = join(v.dir, 'hold');
    writeConfig(v, { smtp: smtpSection() });
    const k = keys(v).length;
    const renewing = cron(v, ['renew'], { PASSTORE_HOLD_AT: 'request-key-made', PASSTORE_HOLD_FILE: hold });
    await until(() => existsSync(`${hold}.held`), 'renew to hold', 30_000);
    await v.withShell(async (tv) => {
      assert.equal(await tv.run('crtreq a --type ec-p256'), 0, tv.io.text());
    });
    writeFileSync(hold, '');
    const r = await renewing;
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^renew a\.site\.test: a request made meanwhile is open; no new key$/m, show(r));
    assert.equal(keys(v).length, k + 1, 'only the shell\'s key was stored');
    assert.equal(openRequests(v).length, 1);

    // Now the host has an open request: crtreq names it and asks; no keeps it.
    await v.withShell(async (tv) => {
      assert.notEqual(await tv.run('crtreq a --type ec-p256', 'no'), 0, tv.io.text());
      assert.match(tv.io.prompts.join('\n'), /This host has an open request, which may already be at the CA: a\.site\.test \(made \d{4}-\d\d-\d\d\)\. Replace it\?/);
      assert.match(tv.io.text(), /the open request was kept; nothing was made/);
    });
    assert.equal(keys(v).length, k + 1);
    await v.withShell(async (tv) => {
      assert.equal(await tv.run('crtreq a --type ec-p256', 'yes'), 0, tv.io.text());
    });
    assert.equal(keys(v).length, k + 2, 'replaced after a yes');
    assert.equal(openRequests(v).length, 1, 'still one open request');
  });
});

describe('the run lease', () => {
  test('a run holding the lease: the next says who holds it in one line and exits 0, check answers; once the holder is killed the next run takes over at once', async () => {
    const v = await dueVault();
    const hold = join(v.dir, 'hold');
    writeConfig(v, { smtp: smtpSection(), top: { lease_wait: 0 } });
    const holder = spawnCron(v, ['run'], { PASSTORE_HOLD_AT: 'cron-renewed', PASSTORE_HOLD_FILE: hold });
    await until(() => existsSync(`${hold}.held`), 'the run to hold', 30_000);
    const pid = Number(readFileSync(`${hold}.held`, 'utf8'));

    const second = await cron(v, ['run']);
    assert.equal(second.code, 0, show(second));
    assert.equal(second.lines.length, 1, show(second));
    assert.match(second.lines[0]!, new RegExp(`^another run holds the lease: \\S+ pid ${pid} since \\d\\d:\\d\\d$`));

    const check = await cron(v, ['check']);
    assert.equal(check.code, 1, show(check)); // within crt_ttl, and the request not mailed yet
    assert.match(check.stdout, /^PASSTORE WARNING - /);

    process.kill(pid, 'SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    const third = await cron(v, ['run']);
    assert.equal(third.code, 0, show(third));
    assert.ok(!third.stdout.includes('another run holds the lease'), show(third));
    assert.match(third.stdout, /^mail: \d+ sent$/m, show(third));
    assert.equal(dbRows<{ token: string }>(v, "SELECT token FROM run_lease WHERE name = 'cron'")[0]!.token, '', 'freed at the end');
  });

  test('a holder on another machine that stopped extending its lease: taken over once it expired', async () => {
    const v = await dueVault();
    writeConfig(v, { smtp: smtpSection(), top: { lease_wait: 0 } });
    assert.equal((await cron(v, ['check'])).code, 1); // migrated
    const since = new Date();
    const db = new Database(v.dbPath);
    db.prepare("UPDATE run_lease SET token = 'elsewhere/1', machine = 'vault-2', pid = 4711, started_at = ?, expires_at = ? WHERE name = 'cron'").run(since.toISOString(), new Date(since.getTime() + 3000).toISOString());
    db.close();
    const hhmm = `${String(since.getHours()).padStart(2, '0')}:${String(since.getMinutes()).padStart(2, '0')}`;
    const held = await cron(v, ['renew']);
    assert.equal(held.code, 0, show(held));
    assert.deepEqual(held.lines, [`another run holds the lease: vault-2 pid 4711 since ${hhmm}`]);
    assert.equal(keys(v).filter((k) => k.state === 'pending').length, 0, 'nothing done');
    await new Promise((r) => setTimeout(r, 3200));
    const taken = await cron(v, ['renew']);
    assert.equal(taken.code, 0, show(taken));
    assert.match(taken.stdout, /^renew a\.site\.test: new /m, show(taken));
  });

  test('a second run waits lease_wait for the first and then acts', async () => {
    const v = await dueVault();
    const hold = join(v.dir, 'hold');
    writeConfig(v, { smtp: smtpSection(), top: { lease_wait: 60 } });
    const first = cron(v, ['renew'], { PASSTORE_HOLD_AT: 'request-key-made', PASSTORE_HOLD_FILE: hold });
    await until(() => existsSync(`${hold}.held`), 'the first run to hold', 30_000);
    const second = cron(v, ['send']);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(outbox(v).filter((m) => m.state === 'sent').length, 0, 'the second run waits');
    writeFileSync(hold, '');
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.code, 0, show(a));
    assert.equal(b.code, 0, show(b));
    assert.match(b.stdout, /^mail: \d+ sent$/m, show(b));
  });
});

describe('rekey beside cron', () => {
  test('a shell rekeys while renew stands between making its key and storing it: the key is sealed under the new data key', async () => {
    const v = await dueVault();
    const hold = join(v.dir, 'hold');
    writeConfig(v, { smtp: smtpSection() });
    const before = await everySecretOpens(v);
    const renewing = cron(v, ['renew'], { PASSTORE_HOLD_AT: 'request-key-made', PASSTORE_HOLD_FILE: hold });
    await until(() => existsSync(`${hold}.held`), 'renew to hold', 30_000);
    await v.withShell(async (tv) => {
      assert.equal(await tv.run('rekey', 'yes'), 0, tv.io.text());
    });
    writeFileSync(hold, '');
    const r = await renewing;
    assert.equal(r.code, 0, show(r));
    const afterwards = await everySecretOpens(v);
    assert.equal(afterwards.generation, before.generation + 1);
    assert.equal(afterwards.opened, before.opened + 1, 'the new key opens, as does every other secret');
  });

  test('a seal outside vault.transaction is refused; one inside follows another session\'s rekey', async () => {
    const v = await dueVault();
    const [s1, s2] = [await openStore(`sqlite:${v.dbPath}`), await openStore(`sqlite:${v.dbPath}`)];
    try {
      const [a, b] = [(await Vault.load(s1))!, (await Vault.load(s2))!];
      await a.unlockWithKeyfile(v.keyfile);
      await b.unlockWithKeyfile(v.keyfile);
      const id = { fqdn: fq('a'), user: 'root', service: 'ssh', version: 1 };
      assert.throws(() => a.sealPassword(id, Secret.fromString('pw-outside')), /only inside vault\.transaction/);
      await b.rekey();
      const sealed = await a.transaction(async () => a.sealPassword(id, Secret.fromString('pw-inside')));
      const host = (await s2.getHost(fq('a')))!;
      const row = { id: 0, hostId: host.id, ...id, state: 'set' as const, secretCiphertext: sealed, updatedAt: '', updatedBy: '', pendingCiphertext: null, pendingVersion: null };
      const plain = b.openPassword(row);
      assert.equal(plain.equals(Secret.fromString('pw-inside')), true, 'the other session opens it with the new key');
    } finally {
      await s1.close();
      await s2.close();
    }
  });
});

describe('nothing forgotten', () => {
  test('no admin_email: renew refuses before it makes a key', async () => {
    const v = await dueVault();
    const file = writeConfig(v, { smtp: smtpSection() });
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^admin_email = .*\n/m, ''), { mode: 0o600 });
    const k = keys(v).length;
    const r = await cron(v, ['renew']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /^FAILED: renew: 1 certificate is due \(a\.site\.test\) but admin_email is not set.*no key or request was made$/m, show(r));
    assert.equal(keys(v).length, k, 'no key');
    assert.equal(openRequests(v).length, 0, 'no request');
  });

  test('a stored certificate whose deploy failed: check reports it until it is deployed; each run retries it', async () => {
    const v = await dueVault();
    const drop = join(v.dir, 'drop');
    mkdirSync(drop);
    writeConfig(v, { smtp: smtpSection(), ca: { dir: drop, trust: ca.caCert } });
    assert.equal((await cron(v, ['renew'])).code, 0);
    const [req] = dbRows<{ pem: string }>(v, "SELECT pem FROM cert_requests WHERE state IN ('created', 'sent')");
    const reqFile = join(v.dir, 'a.req');
    writeFileSync(reqFile, req!.pem);
    writeFileSync(join(drop, 'a.pem'), readFileSync(await ca.sign(reqFile, { days: 90 })));
    // The host has no address nor pinned key: the deploy fails.
    const r = await cron(v, ['fetch']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /^stored the certificate for a\.site\.test /m, show(r));
    assert.match(r.stdout, /^FAILED: deploy a\.site\.test: /m, show(r));
    const c = await cron(v, ['check']);
    assert.equal(c.code, 1, show(c));
    assert.match(c.stdout, /^PASSTORE WARNING - 1 certificate not deployed: a\.site\.test(; [^|]*)? \| .*\bundeployed=1\b/m, show(c)); // other warnings join it on the line
    const again = await cron(v, ['run']);
    assert.match(again.stdout, /^FAILED: deploy a\.site\.test \(retried\): /m, show(again));
  });

  test('SMTP down for three runs: each run and check report the unmailed request; the fourth run mails it once', async () => {
    const v = await dueVault();
    writeConfig(v, { smtp: smtpSection(await closedPort()) });
    for (let i = 1; i <= 3; i++) {
      const r = await cron(v, ['run']);
      assert.equal(r.code, 1, show(r)); // the mail failure is a FAILED line
      assert.match(r.stdout, /^WARNING: the request for a\.site\.test \(made \d{4}-\d\d-\d\d\) is not mailed yet: \d+ attempts?, last: .*; it stays queued$/m, show(r));
      const c = await cron(v, ['check']);
      assert.equal(c.code, 1, show(c));
      assert.match(c.stdout, /1 request not mailed: a\.site\.test/, show(c));
      assert.match(c.stdout, /unmailed_requests=1/, show(c));
    }
    assert.equal(keys(v).filter((k) => k.state === 'pending').length, 1, 'one key over the three runs');
    writeConfig(v, { smtp: smtpSection() });
    const from = mails.length;
    const fourth = await cron(v, ['run']);
    assert.equal(fourth.code, 0, show(fourth));
    assert.ok(!fourth.stdout.includes('WARNING: the request'), show(fourth));
    await until(() => mails.length > from, 'the request mail');
    await new Promise((r) => setTimeout(r, 300));
    const requestMails = mails.slice(from).filter((m) => m.subject === `passtore: certificate request for ${fq('a')}`);
    assert.equal(requestMails.length, 1, 'mailed once');
    const c = await cron(v, ['check']);
    assert.doesNotMatch(c.stdout, /not mailed/, show(c));
  });
});

/** A vault on a fresh database of the private MariaDB: host `a` due (10 days left), a key file, a config for passtore-cron. */
async function mariaVault(): Promise<{ db: TestDatabase; dir: string; keyfile: string; configFile: string }> {
  const db = await createTestDatabase();
  const tv = await createTestVault({ db: db.url, dbPasswordFile: db.passwordFile, domain: DOMAIN });
  const dir = tv.dir;
  const keyfile = join(dir, 'cron.key');
  try {
    assert.equal(await tv.run('host add a'), 0, tv.io.text());
    const out = join(dir, 'req');
    mkdirSync(out);
    assert.equal(await tv.run(`crtreq a --type ec-p256 --out ${out}`), 0, tv.io.text());
    const cert = await ca.sign(join(out, `${fq('a')}.req`), { days: 10, out: ca.path(`maria-${db.name}.crt`) });
    assert.equal(await tv.run(`getcrt ${cert}`), 0, tv.io.text());
    assert.equal(await tv.run(`keyfile create ${keyfile}`, PASSPHRASE), 0, tv.io.text());
  } finally {
    await tv.close();
  }
  const configFile = join(dir, 'passtore.conf');
  writeFileSync(
    configFile,
    [`domain = ${DOMAIN}`, `db = ${db.url}`, `db_password_file = ${db.passwordFile}`, `keyfile = ${keyfile}`, 'admin_email = hostmaster@site.test', 'crt_ttl = 30', 'lease_wait = 60', '', '[smtp]', 'host = 127.0.0.1', `port = ${smtp.port}`, 'from = passtore@vault.site.test', 'insecure = yes', ''].join('\n'),
    { mode: 0o600 },
  );
  return { db, dir, keyfile, configFile };
}

describe('on MariaDB (two vault machines share one database)', async () => {
  const skip = await mariadbSkip();
  let db: TestDatabase | undefined;
  let dir = '';
  let keyfile = '';
  let configFile = '';
  after(async () => {
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const count = async (sql: string): Promise<number> => Number((await db!.sql(sql)).trim().split('\n').at(-1));
  const mcron = (args: string[], env: Record<string, string> = {}): Promise<CronResult> => runCron(['--config', configFile, ...args], { dataHome: join(dir, 'data'), env });

  before(async () => {
    if (skip) return;
    ({ db, dir, keyfile, configFile } = await mariaVault());
  });

  test('three renew at once: one new key, one open request, one request mail; a rekey while one is held between its key and its request loses nothing', { skip }, async () => {
    const keysBefore = await count('SELECT COUNT(*) FROM private_keys');
    const hold = join(dir, 'hold');
    const held = mcron(['renew'], { PASSTORE_HOLD_AT: 'request-key-made', PASSTORE_HOLD_FILE: hold });
    await until(() => existsSync(`${hold}.held`), 'renew to hold', 30_000);
    const others = [mcron(['renew']), mcron(['renew'])];
    // A rekey in a shell while the first stands between its key and its request.
    const io = new ScriptedIo();
    const session = await Session.open({ config: { ...defaultConfig(), domain: DOMAIN, db: db!.url, dbPasswordFile: db!.passwordFile, operator: 'alice' }, prompt: io, out: io, terminal: true, unlock: { failureDelayMs: 10 } });
    try {
      await session.unlockWithKeyfile(keyfile);
      io.answers.push('yes');
      assert.equal(await session.execute('rekey'), 0, io.text());
    } finally {
      await session.close();
    }
    writeFileSync(hold, '');
    const runs = [await held, ...(await Promise.all(others))];
    for (const r of runs) assert.equal(r.code, 0, show(r));
    assert.equal(await count('SELECT COUNT(*) FROM private_keys'), keysBefore + 1, runs.map(show).join('\n'));
    assert.equal(await count("SELECT COUNT(*) FROM cert_requests WHERE state IN ('created', 'sent')"), 1);
    assert.equal(await count("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'request:%'"), 1);
    // Every key opens with the data key now stored.
    const store = await openStore(db!.url, db!.passwordFile, { create: false });
    try {
      const vault = (await Vault.load(store))!;
      await vault.unlockWithKeyfile(keyfile);
      const { keys: all } = await store.allSecrets();
      for (const k of all) vault.openKey(k).fill(0);
      assert.equal(all.length, keysBefore + 1);
      vault.lock();
    } finally {
      await store.close();
    }
  });

  test('a run on another "machine" (its own pid namespace) holds the lease: a run here waits for it and never takes it over while it lives', { skip }, async () => {
    // The host is due again: its open request is cancelled.
    await db!.sql("UPDATE private_keys SET state = 'history' WHERE id IN (SELECT key_id FROM cert_requests WHERE state IN ('created', 'sent'))");
    await db!.sql("UPDATE cert_requests SET state = 'cancelled' WHERE state IN ('created', 'sent')");
    const keysBefore = await count('SELECT COUNT(*) FROM private_keys');
    const hold = join(dir, 'hold-other');
    const env: NodeJS.ProcessEnv = { ...process.env, PASSTORE_SCRYPT_LOG_N: '14', XDG_DATA_HOME: join(dir, 'data-other'), PASSTORE_HOLD_AT: 'request-key-made', PASSTORE_HOLD_FILE: hold };
    delete env.PASSTORE_CONFIG;
    delete env.NODE_OPTIONS;
    delete env.NODE_TEST_CONTEXT;
    // Some processes first, so that its pid is not one of the low ones that exist everywhere.
    const script = 'for i in $(seq 1 1500); do /bin/true; done; "$@"; exit $?';
    const other = spawn('unshare', ['--pid', '--fork', '--mount-proc', 'sh', '-c', script, 'sh', process.execPath, CRON_BIN, '--config', configFile, 'renew'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let otherOut = '';
    other.stdout!.on('data', (d) => (otherOut += d));
    other.stderr!.on('data', (d) => (otherOut += d));
    const otherDone = new Promise<number | null>((resolve) => other.once('exit', (c) => resolve(c)));
    await until(() => existsSync(`${hold}.held`), 'the other machine to hold', 30_000);
    const otherPid = Number(readFileSync(`${hold}.held`, 'utf8'));
    // Its pid, seen from here, is no process: only the pid space in its lease tells a dead holder from one elsewhere.
    assert.throws(() => process.kill(otherPid, 0), { code: 'ESRCH' });
    const noWait = join(dir, 'no-wait.conf');
    writeFileSync(noWait, readFileSync(configFile, 'utf8').replace('lease_wait = 60', 'lease_wait = 0'), { mode: 0o600 });
    const here = await runCron(['--config', noWait, 'renew'], { dataHome: join(dir, 'data'), env: {} });
    assert.equal(here.code, 0, show(here));
    assert.equal(here.lines.length, 1, show(here));
    assert.match(here.lines[0]!, new RegExp(`^another run holds the lease: \\S+ pid ${otherPid} since \\d\\d:\\d\\d$`));
    writeFileSync(hold, '');
    assert.equal(await otherDone, 0, otherOut);
    assert.match(otherOut, /^renew a\.site\.test: new /m, otherOut);
    assert.equal(await count('SELECT COUNT(*) FROM private_keys'), keysBefore + 1, `${show(here)}\n${otherOut}`);
    assert.equal(await count("SELECT COUNT(*) FROM cert_requests WHERE state IN ('created', 'sent')"), 1);
  });

  test('three send at once: each queued mail reaches the SMTP server exactly once', { skip }, async () => {
    const queued = await count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'");
    assert.ok(queued >= 2, `queued: ${queued}`);
    const from = mails.length;
    const runs = await Promise.all([1, 2, 3].map(() => mcron(['send'])));
    for (const r of runs) assert.equal(r.code, 0, show(r));
    await until(() => mails.length - from >= queued, 'the mails');
    await new Promise((r) => setTimeout(r, 300));
    const counts = byMessageId(mails.slice(from));
    assert.equal(counts.size, queued);
    assert.ok([...counts.values()].every((n) => n === 1), JSON.stringify([...counts]));
    assert.equal(await count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'"), 0);
  });
});

/** Why a second network namespace cannot be made here, or undefined. */
function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'a second network namespace needs root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch (e) {
    return `ip netns is not usable: ${(e as Error).message.split('\n')[0]} (Debian: iproute2)`;
  }
  return undefined;
}

/** node:test's skip option for the namespace tests: a reason outside CI, a failure under CI. */
function netnsSkip(): string | false {
  const why = netnsUnavailable();
  if (!why) return false;
  if (process.env.CI === 'true') throw new Error(`CI requires network namespaces: ${why}`);
  console.log(`# skipping the network-namespace tests: ${why}`);
  return why;
}

/**
 * Run inside the other namespace: listens on 127.0.0.1:PORT there for each PORT PATH pair
 * of its arguments and forwards every connection to the unix socket PATH (path-based unix
 * sockets are shared across network namespaces); prints "ready" once all listen.
 */
const RELAY = `
const net = require('node:net');
const pairs = process.argv.slice(1);
let waiting = pairs.length / 2;
for (let i = 0; i < pairs.length; i += 2) {
  const server = net.createServer((c) => {
    const u = net.connect(pairs[i + 1]);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  server.listen(Number(pairs[i]), '127.0.0.1', () => { if (--waiting === 0) console.log('ready'); });
}
process.on('SIGTERM', () => process.exit(0));
`;

describe('on MariaDB, a second vault machine in its own network namespace', async () => {
  const skip = (await mariadbSkip()) || netnsSkip();
  const ns = `passtore-side-${process.pid}`;
  let nsMade = false;
  let relay: ChildProcess | undefined;
  let smtpBridge: Server | undefined;
  let db: TestDatabase | undefined;
  let dir = '';
  let configFile = '';
  /** A run here (the root network namespace) and one on the other machine, with the same config. */
  const here = (args: string[]): Promise<CronResult> => runCron(['--config', configFile, ...args], { dataHome: join(dir, 'data'), env: {} });
  const there = (args: string[]): Promise<CronResult> => runCron(['--config', configFile, ...args], { ns, dataHome: join(dir, 'data-other'), env: {} });
  const count = async (sql: string): Promise<number> => Number((await db!.sql(sql)).trim().split('\n').at(-1));

  before(async () => {
    if (skip) return;
    ({ db, dir, configFile } = await mariaVault());
    const server = await privateMariadb();
    // Over the unix socket MariaDB sees the test user as passtore_test@localhost: the same
    // password (from its file) and grant as for 127.0.0.1.
    const password = readFileSync(db.passwordFile, 'utf8').trim();
    await server.client(['-e', [`CREATE USER IF NOT EXISTS 'passtore_test'@'localhost' IDENTIFIED BY '${password}'`, `GRANT ALL PRIVILEGES ON \`${db.name}\`.* TO 'passtore_test'@'localhost'`].join(';')]);

    // SMTP: the receiver listens on 127.0.0.1 here; a unix socket here forwards to it.
    const smtpSocket = join(work, 'smtp.sock');
    smtpBridge = createServer((c) => {
      const u = connect(smtp.port, '127.0.0.1');
      c.pipe(u).pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => smtpBridge!.listen(smtpSocket, () => r()));

    await execFileP('ip', ['netns', 'add', ns]);
    nsMade = true;
    await execFileP('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    // The other machine has nothing but its loopback: nothing of this namespace reaches it.
    const links = (await execFileP('ip', ['netns', 'exec', ns, 'ip', '-o', 'link'])).stdout.trim().split('\n');
    assert.deepEqual(links.map((l) => l.split(':')[1]!.trim()), ['lo']);
    // There, 127.0.0.1 on the same ports as here: one config serves both machines.
    relay = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', RELAY, String(server.port), server.socket, String(smtp.port), smtpSocket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    relay.stderr!.on('data', (d) => (said += d));
    relay.stdout!.on('data', (d) => (said += d));
    const exited = new Promise<void>((r) => relay!.once('exit', () => r()));
    await Promise.race([until(() => said.includes('ready'), 'the relay in the other namespace', 10_000), exited.then(() => assert.fail(`the relay exited: ${said}`))]);
  });

  after(async () => {
    if (relay && relay.exitCode === null && relay.signalCode === null) {
      const gone = new Promise((r) => relay!.once('exit', r));
      relay.kill('SIGTERM');
      await gone;
    }
    if (smtpBridge) await new Promise((r) => smtpBridge!.close(r));
    if (nsMade) await execFileP('ip', ['netns', 'del', ns]);
    if (db) await (await privateMariadb()).client(['-e', "DROP USER IF EXISTS 'passtore_test'@'localhost'"]);
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('three renew at once, one on the other machine (held between its key and its request) and two here: one new key, one open request, one request mail queued', { skip }, async () => {
    const keysBefore = await count('SELECT COUNT(*) FROM private_keys');
    const hold = join(dir, 'hold-other');
    const first = runCron(['--config', configFile, 'renew'], { ns, dataHome: join(dir, 'data-other'), env: { PASSTORE_HOLD_AT: 'request-key-made', PASSTORE_HOLD_FILE: hold } });
    await until(() => existsSync(`${hold}.held`), 'the other machine to hold', 30_000);
    const others = [here(['renew']), here(['renew'])];
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await count('SELECT COUNT(*) FROM private_keys'), keysBefore, 'the runs here wait for the lease');
    writeFileSync(hold, '');
    const runs = [await first, ...(await Promise.all(others))];
    for (const r of runs) assert.equal(r.code, 0, show(r));
    assert.match(runs[0]!.stdout, /^renew a\.site\.test: new .* key and request/m, show(runs[0]!));
    assert.equal(runs.filter((r) => r.lines.some((l) => /^renew a\.site\.test: new /.test(l))).length, 1, runs.map(show).join('\n'));
    assert.equal(await count('SELECT COUNT(*) FROM private_keys'), keysBefore + 1, runs.map(show).join('\n'));
    assert.equal(await count("SELECT COUNT(*) FROM cert_requests WHERE state IN ('created', 'sent')"), 1);
    assert.equal(await count("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'request:%'"), 1);
  });

  test('three send at once, two on the other machine and one here: each queued mail reaches the SMTP server exactly once', { skip }, async () => {
    const store = await openStore(db!.url, db!.passwordFile, { create: false });
    try {
      for (let i = 0; i < 6; i++) await store.queueMail({ dedupeKey: `netns:${i}`, recipients: ['ops@site.test'], subject: `two machines ${i}`, body: 'x', attachments: [] });
    } finally {
      await store.close();
    }
    const queued = await count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'");
    assert.ok(queued >= 7, `queued: ${queued}`);
    const from = mails.length;
    const runs = await Promise.all([there(['send']), here(['send']), there(['send'])]);
    for (const r of runs) assert.equal(r.code, 0, show(r));
    await until(() => mails.length - from >= queued, 'the mails', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    const counts = byMessageId(mails.slice(from));
    assert.equal(counts.size, queued, runs.map(show).join('\n'));
    assert.ok([...counts.values()].every((n) => n === 1), JSON.stringify([...counts]));
    assert.equal(await count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'"), 0);
  });
});
