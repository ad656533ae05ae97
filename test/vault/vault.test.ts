/**
 * The vault on every back end, driven through a real Session: no password reaches the
 * database in any encoding; an altered or moved ciphertext is an integrity error naming
 * the entry; each operator unlocks with their own passphrase and the audit trail names
 * them; `audit --verify` finds edited, removed, reordered and re-chained records;
 * `passwd` and `rekey` keep every secret readable; a wrong passphrase is counted and
 * answered more slowly each time.
 */
process.env.PASSTORE_SCRYPT_LOG_N = '14';
process.env.PASSTORE_TEST_SWITCHES = 'for-tests-only';

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { PasstoreError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { Session } from '../../src/session.js';
import type { AuditRow } from '../../src/storage/store.js';
import { GENESIS } from '../../src/vault/audit.js';
import { failureDelay, Vault } from '../../src/vault/vault.js';
import { createTestDatabase, mariadbSkip, type TestDatabase } from '../support/mariadb.js';
import { createTestVault, PASSPHRASE, removeTestDir, ScriptedIo, type TestVault, runOk as ok } from '../support/scripted.js';

const PW = {
  ui01: 'Canary-Pw-7f3a9',
  ui02: 'Canary-Pw-2b8c4-ui02',
  db01: 'Canary-Pw-9d1e5-nicedb',
  ui02v2: 'Canary-Pw-4c6f0-ui02-v2',
};
const BOB_PASSPHRASE = 'bob passphrase 12345';
const NEW_PASSPHRASE = 'new passphrase 67890';

/** Direct SQL on the back end, for reading and tampering as an attacker with the database would. */
interface Raw {
  /** The first column of the first row of a query, as text. */
  value(sql: string): Promise<string>;
  exec(sql: string): Promise<void>;
  /** Everything the back end holds, as text (latin1 for the bytes). */
  contents(): Promise<string>;
}

interface Fixture {
  tv: TestVault;
  raw: Raw;
  /** Opens another session, tracked for cleanup; unlocks it when `unlockWith` is given. */
  session(operator: string, unlockWith?: string[]): Promise<{ session: Session; io: ScriptedIo }>;
  /** Opens and unlocks another scripted session (tv.reopen), tracked for cleanup. */
  reopen(operator: string, passphrase: string): Promise<TestVault>;
}

interface Backend {
  name: string;
  skip: string | false;
  create(): Promise<{ tv: TestVault; raw: Raw; cleanup(): Promise<void> }>;
}

function sqliteRaw(path: string): Raw {
  const withDb = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(path);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    value: async (sql) => String(withDb((db) => db.prepare(sql).pluck().get())),
    exec: async (sql) => withDb((db) => void db.exec(sql)),
    contents: async () =>
      Buffer.concat([path, `${path}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f))).toString('latin1'),
  };
}

function mariadbRaw(t: TestDatabase): Raw {
  return {
    value: async (sql) => {
      const lines = (await t.sql(sql)).split('\n');
      assert.ok(lines.length >= 2, `no row from ${sql}`);
      return lines[1]!;
    },
    exec: async (sql) => void (await t.sql(sql)),
    contents: () => t.dump(),
  };
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    async create() {
      const tv = await createTestVault();
      return { tv, raw: sqliteRaw(tv.config.db.slice('sqlite:'.length)), cleanup: async () => removeTestDir(tv) };
    },
  },
  {
    name: 'mariadb',
    skip: await mariadbSkip(),
    async create() {
      // One database for the file (creating one costs more than a test); each test
      // starts from empty tables.
      databaseForFile ??= createTestDatabase();
      const t = await databaseForFile;
      const tables = (await t.sql('SHOW TABLES')).split('\n').slice(1).filter((n) => n && n !== 'schema_migrations');
      if (tables.length) await t.sql(`SET FOREIGN_KEY_CHECKS = 0; ${tables.map((n) => `DELETE FROM \`${n}\``).join('; ')}; SET FOREIGN_KEY_CHECKS = 1`);
      const tv = await createTestVault({ db: t.url, dbPasswordFile: t.passwordFile });
      return { tv, raw: mariadbRaw(t), cleanup: async () => removeTestDir(tv) };
    },
  },
];

let databaseForFile: Promise<TestDatabase> | undefined;
after(async () => {
  if (databaseForFile) await (await databaseForFile).drop();
});

/** Runs `fn` on a fresh vault; closes every session and removes the database afterwards. */
async function withVault(backend: Backend, fn: (f: Fixture) => Promise<void>): Promise<void> {
  const made = await backend.create();
  const open: Array<{ close(): Promise<void> }> = [made.tv];
  const fixture: Fixture = {
    tv: made.tv,
    raw: made.raw,
    async session(operator, unlockWith) {
      const io = new ScriptedIo();
      const session = await Session.open({ config: made.tv.config, prompt: io, out: io, terminal: true, operator, unlock: { failureDelayMs: 10 } });
      open.push(session);
      if (unlockWith) {
        io.answers.push(...unlockWith);
        await session.unlock(unlockWith.length);
      }
      return { session, io };
    },
    async reopen(operator, passphrase) {
      const other = await made.tv.reopen(operator, passphrase);
      open.push(other);
      return other;
    },
  };
  try {
    await fn(fixture);
  } finally {
    for (const s of open) await s.close().catch(() => undefined);
    await made.cleanup();
  }
}

/** Runs a command that must succeed. */
/** The password `get` shows for a spec. */
async function get(tv: TestVault, spec: string): Promise<string> {
  tv.io.revealed.length = 0;
  await ok(tv, `get ${spec}`);
  assert.equal(tv.io.revealed.length, 1);
  const shown = tv.io.revealed[0]!;
  return shown.slice(shown.indexOf('=') + 1);
}

/** A vault with three hosts, three passwords and one history version (ui-02 updated). */
async function populate(tv: TestVault): Promise<void> {
  await ok(tv, 'host add ui-01');
  await ok(tv, 'host add ui-02');
  await ok(tv, 'host add db-01');
  await ok(tv, 'add ui-01', PW.ui01, PW.ui01);
  await ok(tv, 'add ui-02', PW.ui02, PW.ui02);
  await ok(tv, 'add nicedb@db-01:mysql', PW.db01, PW.db01);
  await ok(tv, 'update ui-02 --local', PW.ui02, PW.ui02v2, PW.ui02v2);
}

/** Every password of `populate`, current and history, still decrypts to what was stored. */
async function assertAllReadable(tv: TestVault): Promise<void> {
  assert.equal(await get(tv, 'ui-01'), PW.ui01);
  assert.equal(await get(tv, 'ui-02'), PW.ui02v2);
  assert.equal(await get(tv, 'nicedb@db-01:mysql'), PW.db01);
  const [old] = await tv.session.store.listHistory('ui-02.example.org', 'root', 'ssh');
  assert.ok(old, 'ui-02 has a history version');
  const secret = tv.session.vault.openPassword(old);
  try {
    assert.equal(secret.reveal(), PW.ui02);
  } finally {
    secret.wipe();
  }
}

function encodings(secret: string): Array<[string, string]> {
  const b = Buffer.from(secret, 'utf8');
  return [
    ['raw utf8', secret],
    ['hex', b.toString('hex')],
    ['HEX', b.toString('hex').toUpperCase()],
    ['base64', b.toString('base64')],
    ['base64 (unpadded)', b.toString('base64').replace(/=+$/, '')],
    ['utf16le', Buffer.from(secret, 'utf16le').toString('latin1')],
  ];
}

function assertNoSecrets(haystack: string, where: string): void {
  for (const secret of [...Object.values(PW), PASSPHRASE, BOB_PASSPHRASE]) {
    for (const [name, form] of encodings(secret)) {
      assert.ok(!haystack.includes(form), `${where} holds '${secret}' (${name})`);
    }
  }
}

/** Hex of an entry's ciphertext and its row id. */
async function ciphertextOf(raw: Raw, fqdn: string, user = 'root', service = 'ssh'): Promise<{ id: string; hex: string }> {
  const where = `FROM entries e JOIN hosts h ON h.id = e.host_id WHERE h.fqdn = '${fqdn}' AND e.user = '${user}' AND e.service = '${service}'`;
  const id = await raw.value(`SELECT e.id ${where}`);
  const hex = (await raw.value(`SELECT HEX(e.secret_ciphertext) ${where}`)).toUpperCase();
  assert.match(hex, /^[0-9A-F]{60,}$/);
  return { id, hex };
}

function flipByte(hex: string, index: number): string {
  const i = index < 0 ? hex.length / 2 + index : index;
  const byte = parseInt(hex.slice(i * 2, i * 2 + 2), 16) ^ 0x01;
  return hex.slice(0, i * 2) + byte.toString(16).padStart(2, '0').toUpperCase() + hex.slice(i * 2 + 2);
}

/** The hash the audit chain uses (what an attacker with the source would recompute). */
function recomputeHash(prevHash: string, r: AuditRow): string {
  const body = JSON.stringify([r.seq, r.at, r.operator, r.action, r.target, r.outcome, r.detail]);
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** An SQL string literal for the plain values audit records hold. */
function q(value: string | null): string {
  if (value === null) return 'NULL';
  assert.ok(!/['\\]/.test(value), `value ${value} needs escaping`);
  return `'${value}'`;
}

function setAuditRow(r: AuditRow): string {
  return `UPDATE audit SET at = ${q(r.at)}, operator = ${q(r.operator)}, action = ${q(r.action)}, target = ${q(r.target)}, outcome = ${q(r.outcome)}, detail = ${q(r.detail)}, prev_hash = ${q(r.prevHash)}, hash = ${q(r.hash)}, mac = ${q(r.mac)} WHERE seq = ${r.seq}`;
}

test('failureDelay: none before a failure, then doubling, capped at 30 s', () => {
  assert.equal(failureDelay(0, 1000), 0);
  assert.equal(failureDelay(-1, 1000), 0);
  assert.equal(failureDelay(1, 1000), 1000);
  assert.equal(failureDelay(2, 1000), 2000);
  assert.equal(failureDelay(3, 1000), 4000);
  assert.equal(failureDelay(4, 250), 2000);
  assert.equal(failureDelay(6, 1000), 30_000);
  assert.equal(failureDelay(100, 1000), 30_000);
  for (let n = 1; n < 40; n++) assert.ok(failureDelay(n + 1, 700) >= failureDelay(n, 700), `the delay never shrinks (${n})`);
});

for (const backend of backends) {
  describe(`vault on ${backend.name}`, { skip: backend.skip }, () => {
    test('no password or passphrase reaches the database in any encoding', async () => {
      await withVault(backend, async ({ tv, raw }) => {
        await populate(tv);
        await ok(tv, 'operator add bob', BOB_PASSPHRASE, BOB_PASSPHRASE);
        await assertAllReadable(tv);
        const fresh = await raw.contents();
        assert.ok(fresh.includes('ui-01.example.org'), 'the search reads the database (host names are cleartext by design)');
        assertNoSecrets(fresh, `${backend.name} while open`);
        await tv.close();
        const closed = await raw.contents();
        assert.ok(closed.includes('nicedb'), 'the search reads the database after close');
        assertNoSecrets(closed, `${backend.name} after close`);
        assertNoSecrets(tv.io.lines.join('\n'), 'the session output');
      });
    });

    test('a flipped byte in a stored ciphertext is an integrity error naming the entry', async () => {
      await withVault(backend, async ({ tv, raw, reopen }) => {
        for (const h of ['ui-01', 'ui-02', 'ui-03', 'db-01']) await ok(tv, `host add ${h}`);
        await ok(tv, 'add ui-01', PW.ui01, PW.ui01);
        await ok(tv, 'add ui-02', PW.ui02, PW.ui02);
        await ok(tv, 'add ui-03', PW.ui02v2, PW.ui02v2);
        await ok(tv, 'add nicedb@db-01:mysql', PW.db01, PW.db01);
        await tv.close();

        // The body, the nonce and the tag: each altered one way.
        const targets: Array<[string, number]> = [['ui-01.example.org', -1], ['ui-02.example.org', 3], ['ui-03.example.org', 20]];
        for (const [fqdn, at] of targets) {
          const { id, hex } = await ciphertextOf(raw, fqdn);
          await raw.exec(`UPDATE entries SET secret_ciphertext = X'${flipByte(hex, at)}' WHERE id = ${id}`);
        }

        const tv2 = await reopen('alice', PASSPHRASE);
        for (const [fqdn] of targets) {
          const before = tv2.io.lines.length;
          const status = await tv2.run(`get ${fqdn}`);
          const out = tv2.io.lines.slice(before).join('\n');
          assert.equal(status, 1, out);
          assert.match(out, /integrity/);
          assert.ok(out.includes(`root@${fqdn}:ssh`), `the error names the entry: ${out}`);
          assert.equal(out.split('\n').length, 1, 'one line');
          assert.deepEqual(tv2.io.revealed, [], 'nothing is shown');
          assertNoSecrets(out, 'the error');
        }
        // The untouched entry still reads, and the failures are in the audit trail.
        assert.equal(await get(tv2, 'nicedb@db-01:mysql'), PW.db01);
        const failures = (await tv2.session.store.listAudit()).filter((r) => r.action === 'get' && r.outcome === 'failed');
        assert.deepEqual(failures.map((r) => [r.target, r.detail]), targets.map(([fqdn]) => [fqdn, 'integrity']));
      });
    });

    test('ciphertexts swapped between rows, or an old version put back, fail to decrypt', async () => {
      await withVault(backend, async ({ tv, raw, reopen }) => {
        await populate(tv);
        await ok(tv, 'add db-01', PW.ui01, PW.ui01);
        await tv.close();

        const a = await ciphertextOf(raw, 'ui-01.example.org');
        const b = await ciphertextOf(raw, 'ui-02.example.org');
        await raw.exec(`UPDATE entries SET secret_ciphertext = X'${b.hex}' WHERE id = ${a.id}`);
        await raw.exec(`UPDATE entries SET secret_ciphertext = X'${a.hex}' WHERE id = ${b.id}`);
        // Same host, other user and service.
        const c = await ciphertextOf(raw, 'db-01.example.org', 'root', 'ssh');
        const d = await ciphertextOf(raw, 'db-01.example.org', 'nicedb', 'mysql');
        await raw.exec(`UPDATE entries SET secret_ciphertext = X'${d.hex}' WHERE id = ${c.id}`);
        await raw.exec(`UPDATE entries SET secret_ciphertext = X'${c.hex}' WHERE id = ${d.id}`);

        const tv2 = await reopen('alice', PASSPHRASE);
        for (const spec of ['root@ui-01.example.org:ssh', 'root@ui-02.example.org:ssh', 'root@db-01.example.org:ssh', 'nicedb@db-01.example.org:mysql']) {
          const before = tv2.io.lines.length;
          assert.equal(await tv2.run(`get ${spec}`), 1, spec);
          const out = tv2.io.lines.slice(before).join('\n');
          assert.match(out, /integrity/);
          assert.ok(out.includes(spec), `the error names ${spec}: ${out}`);
        }
        assert.deepEqual(tv2.io.revealed, []);
        await tv2.close();

        // Rolling ui-02 back to its old password (the history ciphertext, version 1).
        const oldHex = (await raw.value("SELECT HEX(secret_ciphertext) FROM entry_history WHERE fqdn = 'ui-02.example.org'")).toUpperCase();
        await raw.exec(`UPDATE entries SET secret_ciphertext = X'${oldHex}' WHERE id = ${b.id}`);
        const tv3 = await reopen('alice', PASSPHRASE);
        assert.equal(await tv3.run('get ui-02'), 1);
        assert.match(tv3.io.text(), /integrity.*root@ui-02\.example\.org:ssh.*version 2/);
        assert.deepEqual(tv3.io.revealed, []);
      });
    });

    test('two operators each unlock with their own passphrase; the audit trail names who did what', async () => {
      await withVault(backend, async ({ tv, reopen, session }) => {
        await ok(tv, 'host add ui-01');
        await ok(tv, 'host add ui-02');
        await ok(tv, 'add ui-01', PW.ui01, PW.ui01);
        await ok(tv, 'operator add bob', BOB_PASSPHRASE, BOB_PASSPHRASE);

        const bob = await reopen('bob', BOB_PASSPHRASE);
        assert.equal(bob.session.vault.unlockedWith?.name, 'bob');
        assert.equal(await get(bob, 'ui-01'), PW.ui01, 'bob reads what alice stored');
        await ok(bob, 'add ui-02', PW.ui02, PW.ui02);
        assert.equal(await get(tv, 'ui-02'), PW.ui02, 'alice reads what bob stored');

        // Neither passphrase opens the other's slot.
        const wrong = await session('bob');
        wrong.io.answers.push(PASSPHRASE);
        await assert.rejects(wrong.session.unlock(1), (e: unknown) => e instanceof PasstoreError && e.code === 'bad-passphrase' && /operator 'bob'/.test(e.message));
        const wrong2 = await session('alice');
        wrong2.io.answers.push(BOB_PASSPHRASE);
        await assert.rejects(wrong2.session.unlock(1), /wrong passphrase for operator 'alice'/);

        const trail = (await tv.session.store.listAudit()).map((r) => `${r.operator} ${r.action} ${r.target} ${r.outcome}`);
        for (const expected of [
          'alice vault-create',
          'alice host-add ui-01.example.org ok',
          'alice add root@ui-01.example.org:ssh ok',
          'alice operator-add operator:bob ok',
          'bob unlock operator:bob ok',
          'bob reveal root@ui-01.example.org:ssh ok',
          'bob add root@ui-02.example.org:ssh ok',
          'alice reveal root@ui-02.example.org:ssh ok',
          'bob unlock operator:bob failed',
          'alice unlock operator:alice failed',
        ]) {
          assert.ok(trail.some((line) => line.startsWith(expected)), `the trail records '${expected}':\n${trail.join('\n')}`);
        }
        const bobsAdd = trail.findIndex((l) => l.startsWith('bob add'));
        const bobsUnlock = trail.findIndex((l) => l.startsWith('bob unlock operator:bob ok'));
        assert.ok(bobsUnlock < bobsAdd, 'in the order it happened');
        await ok(bob, 'audit --verify');
        assert.match(bob.io.text(), /audit trail intact/);
      });
    });

    describe('audit --verify', () => {
      /** A vault with a short trail; returns its records (sessions closed). */
      async function trail(f: Fixture): Promise<AuditRow[]> {
        await ok(f.tv, 'host add ui-01');
        await ok(f.tv, 'host add ui-02');
        await ok(f.tv, 'add ui-01', PW.ui01, PW.ui01);
        await ok(f.tv, 'add ui-02', PW.ui02, PW.ui02);
        // A pattern write: its records are appended as one batch.
        await ok(f.tv, 'add root@ui-0?:web', 'y', PW.ui01, PW.ui01);
        await get(f.tv, 'ui-01');
        await ok(f.tv, 'list');
        const rows = await f.tv.session.store.listAudit();
        await f.tv.close();
        assert.ok(rows.length >= 6);
        return rows;
      }

      /** Runs audit --verify in a fresh session; returns its status, output and session. */
      async function verify(f: Fixture): Promise<{ status: number; out: string; tv: TestVault }> {
        const tv = await f.reopen('alice', PASSPHRASE);
        const status = await tv.run('audit --verify');
        return { status, out: tv.io.text(), tv };
      }

      const seqOf = (rows: AuditRow[], action: string, target: string) => rows.find((r) => r.action === action && r.target === target)!.seq;

      test('an untouched trail verifies, failed unlocks (sealed at the next unlock) included', async () => {
        await withVault(backend, async (f) => {
          await trail(f);
          const failed = await f.session('alice');
          failed.io.answers.push('not the passphrase');
          await assert.rejects(failed.session.unlock(1));
          const { status, out, tv } = await verify(f);
          assert.equal(status, 0, out);
          assert.match(out, /audit trail intact: \d+ records, \d+ sealed/);
          const rows = await tv.session.store.listAudit();
          // Written without a key, the failed unlock was sealed at the next unlock (verify's).
          const failedUnlocks = rows.filter((r) => r.action === 'unlock' && r.outcome === 'failed');
          assert.ok(failedUnlocks.length >= 1, 'the failed unlock is recorded');
          assert.deepEqual(rows.filter((r) => r.mac === null), [], 'every record is sealed now');
        });
      });

      test('an edited record is found and named', async () => {
        await withVault(backend, async (f) => {
          const rows = await trail(f);
          const k = seqOf(rows, 'add', 'root@ui-01.example.org:ssh');
          await f.raw.exec(`UPDATE audit SET target = 'root@ui-09.example.org:ssh' WHERE seq = ${k}`);
          const { status, out } = await verify(f);
          assert.notEqual(status, 0);
          assert.match(out, new RegExp(`record ${k} was edited`));
          assert.match(out, /audit trail damaged/);
        });
      });

      test('a removed record in the middle is found and named', async () => {
        await withVault(backend, async (f) => {
          const rows = await trail(f);
          const k = seqOf(rows, 'add', 'root@ui-01.example.org:ssh');
          assert.ok(k > 1 && k < rows.length);
          await f.raw.exec(`DELETE FROM audit WHERE seq = ${k}`);
          const { status, out } = await verify(f);
          assert.notEqual(status, 0);
          assert.match(out, new RegExp(`records ${k}\\.\\.${k} are missing`));
          assert.match(out, new RegExp(`record ${k + 1} does not follow`));
        });
      });

      test('two records swapped (reordered) are found and named', async () => {
        await withVault(backend, async (f) => {
          const rows = await trail(f);
          const k = seqOf(rows, 'add', 'root@ui-01.example.org:ssh');
          const a = rows.find((r) => r.seq === k)!;
          const b = rows.find((r) => r.seq === k + 1)!;
          await f.raw.exec(`${setAuditRow({ ...b, seq: k })}; ${setAuditRow({ ...a, seq: k + 1 })}`);
          const { status, out } = await verify(f);
          assert.notEqual(status, 0);
          assert.match(out, new RegExp(`record ${k} `));
          assert.match(out, new RegExp(`record ${k + 1} `));
        });
      });

      /** Edits record k and re-chains every record from k on, as someone knowing the hash would. */
      function rebuild(rows: AuditRow[], k: number, mac: 'stale' | 'null'): AuditRow[] {
        const out: AuditRow[] = [];
        let prev = GENESIS;
        for (const r of rows) {
          let row = { ...r, prevHash: prev };
          if (r.seq === k) row = { ...row, target: 'root@ui-09.example.org:ssh' };
          if (r.seq >= k) {
            row.hash = recomputeHash(row.prevHash, row);
            if (mac === 'null') row.mac = null;
          }
          out.push(row);
          prev = row.hash;
        }
        return out;
      }

      test('the newest records removed are found', async () => {
        await withVault(backend, async (f) => {
          const rows = await trail(f);
          const last = rows.at(-1)!.seq;
          await f.raw.exec(`DELETE FROM audit WHERE seq >= ${last - 1}`);
          const { status, out } = await verify(f);
          assert.notEqual(status, 0, out);
        });
      });

      for (const mac of ['stale', 'null'] as const) {
        test(`a re-chained trail (hashes recomputed, seals ${mac === 'stale' ? 'left stale' : 'removed'}) is found by the seals`, async () => {
          await withVault(backend, async (f) => {
            const rows = await trail(f);
            const k = seqOf(rows, 'add', 'root@ui-01.example.org:ssh');
            const forged = rebuild(rows, k, mac);
            await f.raw.exec(forged.filter((r) => r.seq >= k).map(setAuditRow).join('; '));
            const { status, out } = await verify(f);
            assert.notEqual(status, 0);
            // The chain itself is consistent: only the seals give it away.
            assert.doesNotMatch(out, /hash mismatch|does not follow|missing/);
            assert.match(out, new RegExp(mac === 'stale' ? `record ${k} has a bad seal` : `record ${k} lacks its seal`));
          });
        });
      }
    });

    test('passwd rewraps only the slot; rekey re-encrypts; every secret stays readable', async () => {
      await withVault(backend, async ({ tv, reopen, session }) => {
        await populate(tv);
        await ok(tv, 'operator add bob', BOB_PASSPHRASE, BOB_PASSPHRASE);
        const store = tv.session.store;
        const before = await store.allSecrets();
        const bobSlot = (await store.getSlot('passphrase', 'bob'))!;
        const aliceSlot = (await store.getSlot('passphrase', 'alice'))!;

        // A wrong current passphrase changes nothing.
        assert.equal(await tv.run('passwd', 'not my passphrase', NEW_PASSPHRASE, NEW_PASSPHRASE), 3);
        assert.match(tv.io.text(), /wrong passphrase; nothing was changed/);
        assert.ok((await store.getSlot('passphrase', 'alice'))!.rootKeyCiphertext.bytes.equals(aliceSlot.rootKeyCiphertext.bytes));

        await ok(tv, 'passwd', PASSPHRASE, NEW_PASSPHRASE, NEW_PASSPHRASE);
        const after = await store.allSecrets();
        assert.deepEqual(
          after.entries.map((e) => e.secretCiphertext!.bytes.toString('hex')),
          before.entries.map((e) => e.secretCiphertext!.bytes.toString('hex')),
          'passwd rewrites no secret',
        );
        assert.ok(!(await store.getSlot('passphrase', 'alice'))!.rootKeyCiphertext.bytes.equals(aliceSlot.rootKeyCiphertext.bytes), "alice's slot is rewrapped");
        assert.ok((await store.getSlot('passphrase', 'bob'))!.rootKeyCiphertext.bytes.equals(bobSlot.rootKeyCiphertext.bytes), "bob's slot is untouched");
        await assertAllReadable(tv);

        const withNew = await reopen('alice', NEW_PASSPHRASE);
        await assertAllReadable(withNew);
        const withOld = await session('alice');
        withOld.io.answers.push(PASSPHRASE);
        await assert.rejects(withOld.session.unlock(1), /wrong passphrase/);

        // rekey: a new data key, every ciphertext rewritten, every secret the same.
        const generation = (await store.getVault())!.dataKeyGeneration;
        await ok(tv, 'rekey', 'y');
        assert.match(tv.io.text(), /rekeyed: 4 secrets re-encrypted/);
        assert.equal((await store.getVault())!.dataKeyGeneration, generation + 1);
        const rekeyed = await store.allSecrets();
        const hexes = (s: typeof before) => [...s.entries, ...s.history].map((r) => r.secretCiphertext?.bytes.toString('hex'));
        const old = new Set(hexes(after));
        assert.equal(hexes(rekeyed).length, 4);
        assert.ok(hexes(rekeyed).every((h) => h && !old.has(h)), 'every ciphertext was rewritten');
        await assertAllReadable(tv);
        const fresh = await reopen('alice', NEW_PASSPHRASE);
        await assertAllReadable(fresh);
        const bob = await reopen('bob', BOB_PASSPHRASE);
        await assertAllReadable(bob);
        await ok(bob, 'audit --verify');
        // A declined rekey changes nothing.
        assert.equal(await tv.run('rekey', 'n'), 1);
        assert.equal((await store.getVault())!.dataKeyGeneration, generation + 1);
      });
    });

    test('a session unlocked before another one rekeys neither cries tampering nor writes under the old key', async () => {
      await withVault(backend, async ({ tv, reopen }) => {
        await ok(tv, 'host add ui-01');
        await ok(tv, 'host add ui-02');
        await ok(tv, 'add ui-01', PW.ui01, PW.ui01);
        const other = await reopen('alice', PASSPHRASE);
        await ok(tv, 'rekey', 'y');
        // The other session stores a password after the rekey: it must stay readable.
        await other.run('add ui-02', PW.ui02, PW.ui02);
        const fresh = await reopen('alice', PASSPHRASE);
        if ((await fresh.session.store.getEntry('ui-02.example.org', 'root', 'ssh')) !== undefined) {
          assert.equal(await get(fresh, 'ui-02'), PW.ui02, 'what the other session stored after the rekey is readable');
        }
        // Reading again with the new key, or asking to unlock again, are both fine; a
        // tampering alarm is not.
        const before = other.io.lines.length;
        other.io.revealed.length = 0;
        if ((await other.run('get ui-01')) === 0) assert.deepEqual(other.io.revealed, [`root@ui-01.example.org:ssh=${PW.ui01}`]);
        else assert.doesNotMatch(other.io.lines.slice(before).join('\n'), /integrity/, 'no false tampering alarm');
      });
    });

    test('a wrong passphrase: a clear error, counted in the slot, answered after a growing delay', async () => {
      await withVault(backend, async ({ tv, session }) => {
        const store = tv.session.store;
        const attempt = await session('alice');
        for (const n of [1, 2, 3]) {
          attempt.io.answers.push(`wrong passphrase ${n}`);
          await assert.rejects(attempt.session.unlock(1), (e: unknown) => {
            assert.ok(e instanceof PasstoreError);
            assert.equal(e.code, 'bad-passphrase');
            assert.equal(e.exitStatus, 3);
            assert.equal(e.message, "wrong passphrase for operator 'alice'");
            return true;
          });
          assert.equal((await store.getSlot('passphrase', 'alice'))!.failedAttempts, n);
        }
        assert.equal(attempt.session.unlocked, false);
        // Three tries at the prompt: two wrong ones are reported, the third unlocks and resets the count.
        const retry = await session('alice');
        retry.io.answers.push('wrong again', 'and again', PASSPHRASE);
        await retry.session.unlock(3);
        assert.equal(retry.session.unlocked, true);
        assert.deepEqual(retry.io.lines, ["error: wrong passphrase for operator 'alice'", "error: wrong passphrase for operator 'alice'"]);
        assert.equal((await store.getSlot('passphrase', 'alice'))!.failedAttempts, 0);
        const failedUnlocks = (await store.listAudit()).filter((r) => r.action === 'unlock' && r.outcome === 'failed');
        assert.equal(failedUnlocks.length, 5);
        const trail = JSON.stringify(await store.listAudit());
        assertNoSecrets(trail, 'the audit trail');
        for (const typed of ['wrong passphrase 1', 'wrong again', 'and again']) assert.ok(!trail.includes(typed), 'a mistyped passphrase is not recorded');

        // The delay follows the slot's count: after 3 earlier failures, the 4th waits base * 8.
        const vault = (await Vault.load(store))!;
        const slot = (await store.getSlot('passphrase', 'alice'))!;
        const base = 40;
        const timeWrong = async () => {
          const t0 = performance.now();
          await assert.rejects(vault.unlockWithPassphrase('alice', Secret.fromString('still wrong'), { failureDelayMs: base }), /wrong passphrase/);
          return performance.now() - t0;
        };
        await store.setFailedAttempts(slot.id, 0);
        const first = await timeWrong();
        await store.setFailedAttempts(slot.id, 3);
        const fourth = await timeWrong();
        assert.ok(first >= base - 5, `first failure waited ${first} ms`);
        assert.ok(fourth >= failureDelay(4, base) - 5, `fourth failure waited ${fourth} ms`);
        assert.ok(fourth > first + 150, `the delay grew (${first} ms, then ${fourth} ms)`);
        assert.equal((await store.getSlot('passphrase', 'alice'))!.failedAttempts, 4);
      });
    });
  });
}
