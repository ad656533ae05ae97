/**
 * Storage cannot roll the vault back unseen (issue 13, item 6). As the database's
 * administrator, with SQL and no key: a rekey undone by writing every table back as it
 * was before, the end of the audit trail cut off with the older sealed head written
 * back, and an entry set back to its old password (its history version 1, the history
 * deleted). Each is refused at the next unlock with an integrity error naming what was
 * rolled back, and nothing is shown. Backups: the copy restored is the newest by its
 * authenticated time (not by directory name), a manifest whose time was edited is
 * refused, and an older copy is restored only after a question. SQLite and MariaDB.
 */
process.env.PASSTORE_SCRYPT_LOG_N = '14';
process.env.PASSTORE_TEST_SWITCHES = 'for-tests-only';

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PasstoreError } from '../../src/errors.js';
import { restoreFromBackup } from '../../src/restore.js';
import { Session } from '../../src/session.js';
import { BACKUP_TABLES } from '../../src/backup.js';
import { asRoot, backendsToRun, newPlace, writeBackSql, type Place as HarnessPlace, type Backend } from '../faults/harness.js';
import { createTestVault, PASSPHRASE, ScriptedIo, type TestVault, runOk as ok } from '../support/scripted.js';

/**
 * The fault harness's places (test/faults/harness.ts: a throwaway SQLite file or MariaDB
 * database), with SQL run as the database's administrator (`asRoot`).
 */
async function openPlace(backend: Backend) {
  const p = await newPlace(backend, 'rollback');
  const others: HarnessPlace[] = [];
  return {
    db: p.db,
    dbPasswordFile: p.passwordFile,
    sql: (statement: string) => asRoot(p, statement),
    /** Another empty database of the same kind (a restore target). */
    async another(): Promise<{ db: string; dbPasswordFile?: string }> {
      const o = await newPlace(backend, 'rollback-target');
      others.push(o);
      return { db: o.db, dbPasswordFile: o.passwordFile };
    },
    async cleanup() {
      for (const o of others) await o.remove();
      await p.remove();
    },
  };
}

const backends = (await backendsToRun()).map(({ backend, skip }) => ({ name: backend, skip, create: () => openPlace(backend) }));

type Rows = Record<string, Array<Record<string, unknown>>>;

/** Unlocks a new session (same machine: same state directory); returns the error, if any. */
async function unlockError(tv: TestVault): Promise<PasstoreError | undefined> {
  const io = new ScriptedIo();
  io.answers.push(PASSPHRASE);
  const session = await Session.open({ config: tv.config, prompt: io, out: io, terminal: true, operator: 'alice', unlock: { failureDelayMs: 10 }, stateDir: tv.dir });
  try {
    await session.unlock(1);
    return undefined;
  } catch (e) {
    assert.ok(e instanceof PasstoreError, String(e));
    assert.equal(session.unlocked, false, 'left locked');
    assert.deepEqual(io.revealed, []);
    return e;
  } finally {
    await session.close();
  }
}

for (const backend of backends) {
  describe(`rollbacks are refused (${backend.name})`, { skip: backend.skip }, () => {
    test('a rekey undone by writing every table back is refused at unlock, naming it', async () => {
      const place = await backend.create();
      const tv = await createTestVault({ db: place.db, dbPasswordFile: place.dbPasswordFile });
      try {
        await ok(tv, 'host add ui-01');
        await ok(tv, 'add ui-01', 'leaked password 1', 'leaked password 1');
        const before = (await tv.session.store.exportRows()) as Rows;
        await ok(tv, 'rekey', 'y');
        await ok(tv, 'host add ui-02');
        await ok(tv, 'add ui-02', 'a later secret 2', 'a later secret 2');
        await tv.close();
        await place.sql(writeBackSql(before, BACKUP_TABLES.filter((t) => t !== 'outbox')));
        const e = await unlockError(tv);
        assert.ok(e, 'the rolled-back vault does not unlock');
        assert.equal(e.code, 'integrity');
        assert.match(e.message, /^integrity error: the vault was rolled back: a rekey was undone \(data key generation 1, root key generation 1; generation 2, 2 was seen\); the end of the audit trail was cut off/);
      } finally {
        rmSync(tv.dir, { recursive: true, force: true });
        await place.cleanup();
      }
    });

    test('the end of the audit trail cut off, the older sealed head written back: refused at unlock', async () => {
      const place = await backend.create();
      const tv = await createTestVault({ db: place.db, dbPasswordFile: place.dbPasswordFile });
      try {
        await ok(tv, 'host add ui-01');
        const head = (await tv.session.store.getVault())!.auditHead!;
        const seq = (await tv.session.store.lastAudit())!.seq;
        await ok(tv, 'add ui-01', 'a password 12345', 'a password 12345');
        await ok(tv, 'get ui-01');
        await tv.close();
        await place.sql(`DELETE FROM audit WHERE seq > ${seq}; UPDATE vault SET audit_head = '${head}'`);
        const e = await unlockError(tv);
        assert.ok(e, 'the cut trail does not unlock');
        assert.match(e.message, new RegExp(`^integrity error: the vault was rolled back: the end of the audit trail was cut off \\(it ends at sealed record ${seq}; record \\d+ was seen\\)`));
      } finally {
        rmSync(tv.dir, { recursive: true, force: true });
        await place.cleanup();
      }
    });

    test('an entry set back to its old password (history v1, history deleted) is refused at unlock, naming the entry', async () => {
      const place = await backend.create();
      const tv = await createTestVault({ db: place.db, dbPasswordFile: place.dbPasswordFile });
      try {
        await ok(tv, 'host add ui-01');
        await ok(tv, 'add ui-01', 'leaked old password', 'leaked old password');
        await ok(tv, 'update ui-01 --local', 'leaked old password', 'the new password 2', 'the new password 2');
        const [v1] = await tv.session.store.listHistory('ui-01.example.org');
        assert.equal(v1!.version, 1);
        await tv.close();
        await place.sql(`UPDATE entries SET version = 1, secret_ciphertext = X'${v1!.secretCiphertext!.bytes.toString('hex')}'; DELETE FROM entry_history`);
        const e = await unlockError(tv);
        assert.ok(e, 'the vault with the entry set back does not unlock');
        assert.equal(e.code, 'integrity');
        // Caught by the summary of what is current in the database (summary.ts), on any machine.
        assert.match(e.message, /^integrity error: an entry was rolled back with SQL: entry root@ui-01\.example\.org:ssh went back from version 2 to version 1; nothing is shown/);
      } finally {
        rmSync(tv.dir, { recursive: true, force: true });
        await place.cleanup();
      }
    });

    test('restore takes the newest copy by its authenticated time and asks before an older one', async () => {
      const place = await backend.create();
      const tv = await createTestVault({ db: place.db, dbPasswordFile: place.dbPasswordFile });
      const media = mkdtempSync(join(tmpdir(), 'passtore-media-'));
      try {
        await ok(tv, 'host add ui-01');
        await ok(tv, `backup ${media}`);
        const [older] = readdirSync(media);
        await ok(tv, 'add ui-01', 'only in the newer copy', 'only in the newer copy');
        await new Promise((r) => setTimeout(r, 20));
        await ok(tv, `backup ${media}`);
        await tv.close();
        // The older copy renamed to look newest: chosen by name, it would win.
        renameSync(join(media, older!), join(media, 'passtore-29991231T235959.999Z'));
        const fresh = mkdtempSync(join(tmpdir(), 'passtore-newmachine-'));
        try {
          const target = await place.another();
          const io = new ScriptedIo();
          io.answers.push(PASSPHRASE);
          const r = await restoreFromBackup({ ...tv.config, ...target }, media, 'alice', io, io, { stateDir: fresh });
          assert.doesNotMatch(r.copy, /2999/, 'the newest copy by its time, not by its name');
          assert.doesNotMatch(io.text(), /not the newest/);
          assert.match(io.text(), /the copy was made at .* UTC \(0 hours old\)/);

          // The older one, named explicitly: shown with its age, and asked about.
          const target2 = await place.another();
          const no = new ScriptedIo();
          no.answers.push(PASSPHRASE, 'n');
          await assert.rejects(restoreFromBackup({ ...tv.config, ...target2 }, join(media, 'passtore-29991231T235959.999Z'), 'alice', no, no, { stateDir: fresh }), /nothing was restored/);
          assert.match(no.text(), /this copy is not the newest: .* (holds a newer copy|saw the vault at a later state)/);

          // A manifest whose time was moved forward is refused, naming it.
          const manifest = join(media, 'passtore-29991231T235959.999Z', 'manifest.json');
          const m = JSON.parse(readFileSync(manifest, 'utf8')) as { createdAt: string };
          m.createdAt = '2999-12-31T23:59:59.999Z';
          writeFileSync(manifest, JSON.stringify(m));
          const target3 = await place.another();
          const io3 = new ScriptedIo();
          io3.answers.push(PASSPHRASE);
          await assert.rejects(restoreFromBackup({ ...tv.config, ...target3 }, media, 'alice', io3, io3, { stateDir: fresh }), (e: unknown) => {
            assert.ok(e instanceof PasstoreError && e.code === 'integrity');
            assert.ok(e.message.startsWith(`${manifest}: its time (2999-12-31T23:59:59.999Z) is not the snapshot's`), e.message);
            return true;
          });
        } finally {
          rmSync(fresh, { recursive: true, force: true });
        }
      } finally {
        rmSync(tv.dir, { recursive: true, force: true });
        rmSync(media, { recursive: true, force: true });
        await place.cleanup();
      }
    });
  });
}
