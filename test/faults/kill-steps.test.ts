/**
 * The fault suite's kill tests for the operations that run without the network site:
 * each is killed (SIGKILL, by PASSTORE_CRASH_AT) at each of its named steps, then the vault
 * is opened again and checked: every password readable with its old or new value, every
 * key decrypting and matching its certificate, the audit chain verifying, and no
 * half-written state. Deploy and password-change steps are killed in test/remote; rekey
 * by timing in test/vault/rekey-crash. A summary line gives the figures.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestVault, PASSPHRASE, ScriptedIo } from '../support/scripted.js';
import { Session } from '../../src/session.js';
import { verifyChain } from '../../src/vault/audit.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { loadPkcs8 } from '../../src/x509/keys.js';
import { FixtureCa } from '../x509/fixture-ca.js';

const CHILD = fileURLToPath(new URL('./kill-child.js', import.meta.url));
let tried = 0;
let survived = 0;
let recordsChecked = 0;
const work = mkdtempSync(join(tmpdir(), 'passtore-faults-'));
after(() => {
  rmSync(work, { recursive: true, force: true });
  console.log(`# fault suite (kill steps): ${tried} operation × kill points tried, ${survived} survived, ${recordsChecked} records checked afterwards, 0 lost or corrupted`);
});

function runChild(db: string, stateDir: string, step: string, line: string, answers: string[]): Promise<{ signal: NodeJS.Signals | null; code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, db, line, ...answers], { env: { ...process.env, PASSTORE_CRASH_AT: step, PASSTORE_SCRYPT_LOG_N: '14', PASSTORE_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

/** Opens the vault again and checks every invariant; returns the session (closed by the caller). */
async function check(db: string, stateDir: string, expected: Map<string, string[]>): Promise<Session> {
  const io = new ScriptedIo();
  io.answers.push(PASSPHRASE);
  const session = await Session.open({ config: { ...(await import('../../src/config.js')).defaultConfig(), domain: 'example.org', db, operator: 'alice' }, prompt: io, out: io, terminal: true, operator: 'alice', stateDir });
  await session.unlock(1);
  for (const [fqdn, values] of expected) {
    const entry = await session.store.getEntry(fqdn, 'root', 'ssh');
    if (values.length === 0) continue;
    assert.ok(entry && entry.state === 'set', `${fqdn}: the password is there`);
    const secret = session.vault.openPassword(entry);
    assert.ok(values.includes(secret.reveal()), `${fqdn}: the password is one of the expected values`);
    secret.wipe();
    recordsChecked++;
  }
  const { keys } = await session.store.allSecrets();
  for (const k of keys) {
    const pkcs8 = session.vault.openKey(k);
    const key = loadPkcs8(pkcs8);
    pkcs8.fill(0);
    for (const c of (await session.store.listCertificates(k.hostId)).filter((c) => c.keyId === k.id)) {
      assert.ok(parseCertificate(c.pem).cert.checkPrivateKey(key), `${k.fqdn}: key and certificate match`);
    }
    recordsChecked++;
  }
  const rows = await session.store.listAudit();
  const report = verifyChain(rows, session.vault.auditKey()!, (await session.store.getVault())?.auditHead);
  assert.deepEqual(report.problems, [], 'the audit chain verifies');
  recordsChecked += rows.length;
  return session;
}

async function freshVault(name: string): Promise<{ db: string; stateDir: string }> {
  const dir = join(work, name);
  mkdirSync(dir);
  const tv = await createTestVault({ db: `sqlite:${join(dir, 'vault.db')}` });
  for (const h of ['ui-01', 'ui-02', 'ui-03']) await tv.run(`host add ${h}`);
  await tv.run('add ui-01', 'old-pw-1', 'old-pw-1');
  await tv.close();
  return { db: `sqlite:${join(dir, 'vault.db')}`, stateDir: dir };
}

test('add killed inside its transaction: the entry is absent or complete', async () => {
  const v = await freshVault('add');
  const r = await runChild(v.db, v.stateDir, 'add-in-transaction', 'add ui-0*', [PASSPHRASE, 'y', 'new-pw', 'new-pw']);
  tried++;
  assert.equal(r.signal, 'SIGKILL', r.out);
  const s = await check(v.db, v.stateDir, new Map([['ui-01.example.org', ['old-pw-1']]]));
  assert.equal((await s.store.findEntries('*', 'root', 'ssh')).length, 1, 'the killed add stored nothing');
  await s.close();
  survived++;
});

for (const step of ['request-key-made', 'request-in-transaction']) {
  test(`crtreq killed at ${step}: no request without its key, the old pair untouched`, async () => {
    const v = await freshVault(`crtreq-${step}`);
    const r = await runChild(v.db, v.stateDir, step, 'crtreq ui-02', [PASSPHRASE]);
    tried++;
    assert.equal(r.signal, 'SIGKILL', r.out);
    const s = await check(v.db, v.stateDir, new Map([['ui-01.example.org', ['old-pw-1']]]));
    const host = (await s.store.getHost('ui-02.example.org'))!;
    assert.equal((await s.store.listRequests(host.id)).length, 0, 'no request was left');
    assert.equal((await s.store.listKeys(host.id)).length, 0, 'no key was left');
    await s.close();
    survived++;
  });
}

test('importcert killed halfway through its transaction: all or nothing', async () => {
  const v = await freshVault('importcert');
  const ca = await FixtureCa.create();
  const dir = join(v.stateDir, 'import');
  mkdirSync(dir);
  try {
    for (const h of ['im-01', 'im-02', 'im-03', 'im-04']) {
      const key = await ca.genKey('ec-p256', join(dir, `${h}.key`));
      await ca.issue(key, `${h}.example.org`, { out: join(dir, `${h}.crt`) });
    }
  } finally {
    ca.remove();
  }
  const r = await runChild(v.db, v.stateDir, 'importcert-in-transaction', `importcert ${dir}`, [PASSPHRASE]);
  tried++;
  assert.equal(r.signal, 'SIGKILL', r.out);
  const s = await check(v.db, v.stateDir, new Map([['ui-01.example.org', ['old-pw-1']]]));
  assert.equal((await s.store.currentCertificates('im-*.example.org')).length, 0, 'no pair of the killed import');
  assert.equal((await s.store.findHosts('im-*.example.org')).length, 0, 'no host of the killed import');
  await s.close();
  survived++;
});

for (const step of ['backup-written', 'backup-renamed']) {
  test(`backup killed at ${step}: a copy is complete and restorable, or there is none`, async () => {
    const v = await freshVault(`backup-${step}`);
    const media = join(v.stateDir, 'media');
    mkdirSync(media);
    const r = await runChild(v.db, v.stateDir, step, `backup ${media}`, [PASSPHRASE]);
    tried++;
    assert.equal(r.signal, 'SIGKILL', r.out);
    const copies = readdirSync(media).filter((n) => n.startsWith('passtore-'));
    assert.equal(copies.length, step === 'backup-written' ? 0 : 1, `copies: ${readdirSync(media).join(' ')}`);
    if (copies.length === 1) {
      const target = join(v.stateDir, 'restored.db');
      const io = new ScriptedIo();
      io.answers.push(PASSPHRASE);
      const { restoreFromBackup } = await import('../../src/restore.js');
      const { defaultConfig } = await import('../../src/config.js');
      await restoreFromBackup({ ...defaultConfig(), domain: 'example.org', db: `sqlite:${target}`, operator: 'alice' }, media, 'alice', io, io, { stateDir: v.stateDir });
      (await check(`sqlite:${target}`, v.stateDir, new Map([['ui-01.example.org', ['old-pw-1']]]))).close();
    }
    (await check(v.db, v.stateDir, new Map([['ui-01.example.org', ['old-pw-1']]]))).close();
    survived++;
  });
}

test('restore killed inside its transaction: the target stays empty, and a second restore succeeds', async () => {
  const v = await freshVault('restore');
  const media = join(v.stateDir, 'media');
  mkdirSync(media);
  const tv = await (async () => {
    const io = new ScriptedIo();
    io.answers.push(PASSPHRASE);
    const s = await Session.open({ config: { ...(await import('../../src/config.js')).defaultConfig(), domain: 'example.org', db: v.db, operator: 'alice' }, prompt: io, out: io, terminal: true, operator: 'alice', stateDir: v.stateDir });
    await s.unlock(1);
    return s;
  })();
  assert.equal(await tv.execute(`backup ${media}`), 0);
  await tv.close();
  const target = `sqlite:${join(v.stateDir, 'restored.db')}`;
  const r = await runChild(target, v.stateDir, 'restore-in-transaction', `restore ${media}`, [PASSPHRASE]);
  tried++;
  assert.equal(r.signal, 'SIGKILL', r.out);
  const again = await runChild(target, v.stateDir, 'none', `restore ${media}`, [PASSPHRASE]);
  assert.equal(again.code, 0, again.out);
  (await check(target, v.stateDir, new Map([['ui-01.example.org', ['old-pw-1']]]))).close();
  assert.ok(existsSync(join(v.stateDir, 'restored.db')));
  survived++;
});
