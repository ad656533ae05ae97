/**
 * The sealed summary of what is current (issue 13, item 6; src/vault/summary.ts), tried
 * as the database's administrator with SQL and no key, on SQLite and on MariaDB:
 *
 * - an entry set back to its old password (version, old ciphertext from history, history
 *   deleted) is refused at `get` in a session that was unlocked before, on a machine with
 *   no copy of the vault's state, also after that refusal added a sealed record; and at
 *   unlock on a fresh machine and on the vault machine; nothing is shown;
 * - the whole database put back, then written on by another machine past the point this
 *   machine saw, is refused at unlock by the copy kept on this machine;
 * - the summary stripped from the vault record is refused, not made anew;
 * - failed unlocks are sent to the system log (logger, argument vector, no secret) and
 *   sealed into the chain at the next unlock, after which removing one is found by
 *   `audit --verify`;
 * - within one session, an entry set back by another connection between two commands is
 *   caught before the next command that uses or writes a secret, although a check that
 *   finds nothing new written by others reads no entry (SQLite's data_version); and the
 *   whole database put back under a running session is refused by the change counter;
 * - two sessions side by side (one machine and two), changing entries at once, and a
 *   pending password (SPEC section 7) never trip the check.
 */
process.env.PASSTORE_SCRYPT_LOG_N = '14';
process.env.PASSTORE_TEST_SWITCHES = 'for-tests-only';

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKUP_TABLES } from '../../src/backup.js';
import { PasstoreError } from '../../src/errors.js';
import { Session } from '../../src/session.js';
import { Secret } from '../../src/secret.js';
import { verifySummary } from '../../src/vault/summary.js';
import { appendAudit } from '../../src/vault/audit.js';
import { Vault } from '../../src/vault/vault.js';
import { openStore } from '../../src/storage/open.js';
import { defaultConfig } from '../../src/config.js';
import { asRoot, backendsToRun, newPlace, runChild, writeBackSql, type Place } from '../faults/harness.js';
import { createTestVault, PASSPHRASE, ScriptedIo, type TestVault, runOk as ok } from '../support/scripted.js';

type Rows = Record<string, Array<Record<string, unknown>>>;

/** A session of alice on `tv`'s database, with the data directory `dir` (another machine: a fresh one). */
async function machine(tv: TestVault, dir: string): Promise<{ session: Session; io: ScriptedIo; run(line: string, ...answers: string[]): Promise<number> }> {
  const io = new ScriptedIo();
  const session = await Session.open({ config: tv.config, prompt: io, out: io, terminal: true, operator: 'alice', unlock: { failureDelayMs: 10 }, stateDir: dir });
  return {
    session,
    io,
    async run(line, ...answers) {
      io.answers.push(...answers);
      const status = await session.execute(line);
      io.answers.length = 0;
      return status;
    },
  };
}

/** Unlocks a new session with data directory `dir`; returns the error, if any (checking nothing was shown). */
async function unlockError(tv: TestVault, dir: string): Promise<PasstoreError | undefined> {
  const m = await machine(tv, dir);
  m.io.answers.push(PASSPHRASE);
  try {
    await m.session.unlock(1);
    return undefined;
  } catch (e) {
    assert.ok(e instanceof PasstoreError, String(e));
    assert.equal(m.session.unlocked, false, 'left locked');
    assert.deepEqual(m.io.revealed, []);
    return e;
  } finally {
    await m.session.close();
  }
}

/** ui-01's root password stored as 'leaked old password' and then changed; returns the rows as they were before the change (what a rollback puts back). */
async function leakedThenChanged(tv: TestVault): Promise<Rows> {
  await ok(tv, 'host add ui-01');
  await ok(tv, 'add ui-01', 'leaked old password', 'leaked old password');
  const before = (await tv.session.store.exportRows()) as Rows;
  await ok(tv, 'update ui-01 --local', 'leaked old password', 'the new password 2', 'the new password 2');
  return before;
}

const ENTRY_BACK = /^integrity error: an entry was rolled back with SQL: entry root@ui-01\.example\.org:ssh went back from version 2 to version 1; nothing is shown$/;

for (const { backend, skip } of await backendsToRun()) {
  describe(`the summary of what is current (${backend})`, { skip }, () => {
    const scratch: string[] = [];
    const fresh = () => {
      const d = mkdtempSync(join(tmpdir(), 'passtore-machine-'));
      scratch.push(d);
      return d;
    };
    async function setUp(): Promise<{ place: Place; tv: TestVault; done(): Promise<void> }> {
      const place = await newPlace(backend, 'summary');
      const tv = await createTestVault({ db: place.db, dbPasswordFile: place.passwordFile });
      return {
        place,
        tv,
        async done() {
          await tv.close().catch(() => undefined);
          rmSync(tv.dir, { recursive: true, force: true });
          for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
          await place.remove();
        },
      };
    }

    test('an entry set back alone is refused at get on a machine with no copy (also after a later sealed record), and at unlock anywhere', async () => {
      const { place, tv, done } = await setUp();
      try {
        await ok(tv, 'host add ui-01');
        await ok(tv, 'host add ui-02');
        await ok(tv, 'add ui-01', 'leaked old password', 'leaked old password');
        await ok(tv, 'update ui-01 --local', 'leaked old password', 'the new password 2', 'the new password 2');
        await ok(tv, 'add ui-02', 'another password 3', 'another password 3');
        const [v1] = await tv.session.store.listHistory('ui-01.example.org');
        assert.equal(v1!.version, 1);
        // Another machine (no copy of the vault's state), unlocked before the rollback.
        const other = await machine(tv, fresh());
        other.io.answers.push(PASSPHRASE);
        await other.session.unlock(1);
        await ok(other, 'get ui-02');
        await tv.close();

        await asRoot(place, `UPDATE entries SET version = 1, secret_ciphertext = X'${v1!.secretCiphertext!.bytes.toString('hex')}' WHERE user = 'root' AND host_id = (SELECT id FROM hosts WHERE fqdn = 'ui-01.example.org'); DELETE FROM entry_history`);
        const sealedBefore = (await other.session.store.lastAudit())!.seq;

        const revealed = other.io.revealed.length;
        assert.notEqual(await other.run('get ui-01'), 0);
        assert.match(other.io.lines.at(-1)!, /^error: integrity error: an entry was rolled back with SQL: entry root@ui-01\.example\.org:ssh went back from version 2 to version 1; nothing is shown$/);
        assert.equal(other.io.revealed.length, revealed, 'nothing shown');
        // The other entry is refused too: nothing is used from a database set back.
        assert.notEqual(await other.run('get ui-02'), 0);
        assert.equal(other.io.revealed.length, revealed, 'nothing shown');
        // Those refusals were sealed into the trail: the check holds after later sealed records.
        const last = (await other.session.store.lastAudit())!;
        assert.ok(last.seq > sealedBefore && last.mac !== null, 'a sealed record was added since the rollback');
        assert.match(`${last.action} ${last.outcome} ${last.detail}`, /^get failed integrity$/);
        await other.session.close();

        // A third machine, fresh, at unlock; and the vault machine (which keeps a copy) at unlock.
        const third = await unlockError(tv, fresh());
        assert.equal(third?.code, 'integrity');
        assert.match(third!.message, ENTRY_BACK);
        const home = await unlockError(tv, tv.dir);
        assert.equal(home?.code, 'integrity');
        assert.match(home!.message, /root@ui-01\.example\.org:ssh went back from version 2 to version 1/);
      } finally {
        await done();
      }
    });

    test('the whole database put back, then written on from another machine past what this one saw, is refused by this machine\'s copy', async () => {
      const { place, tv, done } = await setUp();
      try {
        const before = await leakedThenChanged(tv);
        await ok(tv, 'host add ui-02');
        const seenSeq = (await tv.session.store.lastAudit())!.seq;
        await tv.close();

        await asRoot(place, writeBackSql(before, BACKUP_TABLES.filter((t) => t !== 'outbox')));
        // Consistent in itself: another machine unlocks it and writes on, past this machine's copy.
        const other = await machine(tv, fresh());
        other.io.answers.push(PASSPHRASE);
        await other.session.unlock(1);
        for (let i = 3; (await other.session.store.lastAudit())!.seq <= seenSeq + 2; i++) await ok(other, `host add ui-0${i}`);
        await other.session.close();

        const e = await unlockError(tv, tv.dir);
        assert.equal(e?.code, 'integrity');
        assert.match(e!.message, /^integrity error: the vault was rolled back: .*(written on since|older state)/);
      } finally {
        await done();
      }
    });

    test('a vault from before schema 12 gets its summary at the first unlock, said in the trail; stripped after that, it is refused', async () => {
      const place = await newPlace(backend, 'summary-legacy');
      const dir = fresh();
      try {
        // As an older passtore left it: a vault-create record that says nothing of a summary, and none in the row.
        const store = await openStore(place.db, place.passwordFile);
        const passphrase = Secret.fromString(PASSPHRASE);
        const vault = await Vault.create(store, 'alice', passphrase);
        passphrase.wipe();
        await appendAudit(store, 'alice', { action: 'vault-create', target: store.location, outcome: 'ok' }, vault.auditKey());
        await vault.transaction(async (tx) => {
          const host = await tx.addHost({ fqdn: 'ui-01.example.org', address: null, port: 22, createdAt: new Date().toISOString() });
          const pw = Secret.fromString('an old password');
          await tx.insertEntry({ hostId: host.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: vault.sealPassword({ fqdn: host.fqdn, user: 'root', service: 'ssh', version: 1 }, pw), updatedAt: new Date().toISOString(), updatedBy: 'alice' });
          pw.wipe();
        });
        vault.lock();
        await store.close();
        await asRoot(place, 'UPDATE vault SET summary = NULL');

        const config = { ...defaultConfig(), domain: 'example.org', db: place.db, dbPasswordFile: place.passwordFile, operator: 'alice' };
        const tv = { config, dir } as TestVault;
        assert.equal(await unlockError(tv, dir), undefined, 'the first unlock makes the summary');
        const m = await machine(tv, dir);
        m.io.answers.push(PASSPHRASE);
        await m.session.unlock(1);
        const rows = await m.session.store.listAudit();
        const made = rows.filter((r) => r.action === 'summary-create');
        assert.equal(made.length, 1, 'made once, said once');
        assert.notEqual(made[0]!.mac, null);
        assert.match(made[0]!.detail, /first unlock since schema 12/);
        assert.equal((await verifySummary(m.session.store, m.session.vault.auditKey()!))?.entries, 1);
        await ok(m, 'get ui-01');
        await m.session.close();

        await asRoot(place, 'UPDATE vault SET summary = NULL');
        const e = await unlockError(tv, fresh());
        assert.equal(e?.code, 'integrity');
        assert.match(e!.message, new RegExp(`^integrity error: the summary of what is current was removed from the vault record \\(it was made at audit record ${made[0]!.seq}\\); nothing is shown$`));
      } finally {
        await place.remove();
      }
    });

    test('a summary stripped from the vault record is refused, not made anew', async () => {
      const { place, tv, done } = await setUp();
      try {
        await ok(tv, 'host add ui-01');
        await tv.close();
        await asRoot(place, 'UPDATE vault SET summary = NULL');
        const e = await unlockError(tv, fresh());
        assert.equal(e?.code, 'integrity');
        assert.match(e!.message, /^integrity error: the summary of what is current was removed from the vault record \(it was made at audit record 1\); nothing is shown$/);
      } finally {
        await done();
      }
    });

    test('failed unlocks go to the system log and are sealed at the next unlock; removing one afterwards is found', async () => {
      const { place, tv, done } = await setUp();
      // A `logger` first on PATH that keeps its arguments: what the system log would get.
      const bin = fresh();
      const logged = join(bin, 'logged');
      writeFileSync(join(bin, 'logger'), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >> '${logged}'\n`);
      chmodSync(join(bin, 'logger'), 0o755);
      const path = process.env.PATH;
      process.env.PATH = `${bin}:${path}`;
      try {
        await ok(tv, 'host add ui-01');
        await tv.close();
        const m = await machine(tv, fresh());
        m.io.answers.push('wrong passphrase one', 'wrong passphrase two', PASSPHRASE);
        await m.session.unlock(3);
        const rows = await m.session.store.listAudit();
        const failed = rows.filter((r) => r.action === 'unlock' && r.outcome === 'failed');
        assert.equal(failed.length, 2);
        for (const r of failed) assert.notEqual(r.mac, null, `failed unlock ${r.seq} sealed`);
        assert.match(rows.at(-1)!.detail, /^2 failed unlocks before this one sealed into the trail$/);
        for (let i = 0; i < 50 && !(existsSync(logged) && readFileSync(logged, 'utf8').split('\n').filter((l) => l.startsWith('failed unlock')).length >= 2); i++) await new Promise((r) => setTimeout(r, 50));
        const log = readFileSync(logged, 'utf8');
        assert.match(log, new RegExp(`^-t\\npasstore\\n-p\\nauthpriv\\.warning\\n--\\nfailed unlock of vault ${tv.session.vault.id} by operator:alice\\n`));
        assert.doesNotMatch(log, /wrong passphrase/);
        await m.session.close();

        await asRoot(place, `DELETE FROM audit WHERE seq = ${failed[0]!.seq}`);
        const v = await machine(tv, fresh());
        v.io.answers.push(PASSPHRASE);
        await v.session.unlock(1);
        assert.notEqual(await v.run('audit --verify'), 0);
        assert.match(v.io.text(), new RegExp(`record ${failed[0]!.seq}\\.\\.${failed[0]!.seq} are missing|records ${failed[0]!.seq}\\.\\.${failed[0]!.seq} are missing`));
        await v.session.close();
      } finally {
        process.env.PATH = path;
        await done();
      }
    });

    test('in one session, an entry set back with SQL by another connection between two commands is caught before the next command that uses or writes a secret, also after a commit of this session since', async () => {
      const { place, tv, done } = await setUp();
      try {
        await ok(tv, 'host add ui-01');
        await ok(tv, 'host add ui-02');
        await ok(tv, 'add ui-01', 'leaked old password', 'leaked old password');
        await ok(tv, 'update ui-01 --local', 'leaked old password', 'the new password 2', 'the new password 2');
        await ok(tv, 'add ui-02', 'another password 3', 'another password 3');
        await ok(tv, 'get ui-02');
        const before = tv.session.summaryCheckCounts;
        await ok(tv, 'get ui-02');
        await ok(tv, 'host add ui-03');
        const after = tv.session.summaryCheckCounts;
        if (backend === 'sqlite') {
          // Nobody else wrote: the entries were not read again (only the vault record was checked).
          assert.equal(after.full, before.full, 'no full check while only this session wrote');
          assert.equal(after.skipped, before.skipped + 2);
        } else {
          // MariaDB: every check reads every entry (its HMACs kept from the last one).
          assert.equal(after.full, before.full + 2);
          assert.equal(after.skipped, 0);
        }
        const [v1] = await tv.session.store.listHistory('ui-01.example.org');
        await asRoot(place, `UPDATE entries SET version = 1, secret_ciphertext = X'${v1!.secretCiphertext!.bytes.toString('hex')}' WHERE user = 'root' AND host_id = (SELECT id FROM hosts WHERE fqdn = 'ui-01.example.org'); DELETE FROM entry_history`);
        // A commit of this session after the other connection's (no check before it): the
        // summary moves with it, and the entry set back still does not add up.
        await tv.session.context.change((tx) => tx.addHost({ fqdn: 'ui-04.example.org', address: null, port: 22, createdAt: new Date().toISOString() }).then(() => undefined));
        const revealed = tv.io.revealed.length;
        for (const line of ['get ui-02', 'get ui-01']) {
          assert.notEqual(await tv.run(line), 0, line);
          assert.match(tv.io.lines.at(-1)!, new RegExp(`^error: ${ENTRY_BACK.source.slice(1)}`), line);
        }
        assert.equal(tv.io.revealed.length, revealed, 'nothing shown');
        // A new entry is refused too (it is stored only where nothing was set back).
        assert.notEqual(await tv.run('add ui-03', 'a third password', 'a third password'), 0);
        assert.match(tv.io.lines.at(-1)!, /^error: integrity error: an entry was rolled back with SQL: /);
        assert.equal(await tv.session.store.getEntry('ui-03.example.org', 'root', 'ssh'), undefined, 'nothing stored');
        assert.ok(tv.session.summaryCheckCounts.full >= after.full + 3, 'each refusal read every entry');
      } finally {
        await done();
      }
    });

    test('in one session, the whole database put back with SQL (consistent in itself) is refused before the next command that uses a secret', async () => {
      const { place, tv, done } = await setUp();
      try {
        const before = await leakedThenChanged(tv);
        // The change get's check sees (its reveal record moves the counter on after it).
        const checked = (await verifySummary(tv.session.store, tv.session.vault.auditKey()!))!.counter;
        await ok(tv, 'get ui-01');
        await asRoot(place, writeBackSql(before, BACKUP_TABLES.filter((t) => t !== 'outbox')));
        // The summary put back agrees with the entries put back: only its counter is older.
        const older = (await verifySummary(tv.session.store, tv.session.vault.auditKey()!))!.counter;
        assert.ok(older < checked);
        const revealed = tv.io.revealed.length;
        assert.notEqual(await tv.run('get ui-01'), 0);
        assert.match(tv.io.lines.at(-1)!, new RegExp(`^error: integrity error: the vault record was rolled back: the summary of what is current is at change ${older}, this session already checked change ${checked}; nothing is shown$`));
        assert.equal(tv.io.revealed.length, revealed, 'nothing shown');
      } finally {
        await done();
      }
    });

    test('sessions side by side (shells on one machine, another machine) changing entries at once, and a pending password, never trip the check', async () => {
      const { place, tv, done } = await setUp();
      try {
        const hosts = ['ui-01', 'ui-02', 'ui-03', 'ui-04', 'ui-05', 'ui-06'];
        for (const h of hosts) await ok(tv, `host add ${h}`);
        // Four passtore processes (two sharing this machine's data directory, two another's)
        // and this process's own session on a third machine, all at once: twice (add, then update).
        const other = await machine(tv, fresh());
        other.io.answers.push(PASSPHRASE);
        await other.session.unlock(1);
        const dirs = [tv.dir, tv.dir, fresh(), fresh()];
        const child = (i: number, line: string, answers: string[]) =>
          runChild({ ...place, dir: dirs[i]! }, 'none', line, answers).then((r) => assert.equal(r.code, 0, `${line}:\n${r.out}`));
        await Promise.all([
          ...hosts.slice(0, 4).map((h, i) => child(i, `add ${h}`, [`first ${h}`, `first ${h}`])),
          (async () => {
            for (const h of hosts.slice(4)) await ok(other, `add ${h}`, `first ${h}`, `first ${h}`);
          })(),
        ]);
        await Promise.all([
          ...hosts.slice(0, 4).map((h, i) => child(i, `update ${h} --local`, [`first ${h}`, `second ${h}`, `second ${h}`])),
          (async () => {
            for (const h of hosts.slice(4)) await ok(other, `update ${h} --local`, `first ${h}`, `second ${h}`, `second ${h}`);
          })(),
        ]);
        // A pending password (stored before a host is changed, SPEC section 7) is not a rollback either.
        await other.session.context.change(async (tx) => {
          const e = (await tx.getEntry('ui-01.example.org', 'root', 'ssh'))!;
          const pw = Secret.fromString('a pending password');
          await tx.setPending(e.id, other.session.vault.sealPassword({ fqdn: e.fqdn, user: e.user, service: e.service, version: e.version + 1 }, pw), e.version + 1, new Date().toISOString());
          pw.wipe();
        });
        for (const h of hosts) await ok(other, `get ${h}`);
        assert.ok(await verifySummary(other.session.store, other.session.vault.auditKey()!));
        assert.equal(other.io.revealed.length, hosts.length);
        await other.session.close();
        await tv.close();
        for (const dir of [tv.dir, dirs[2]!, fresh()]) assert.equal(await unlockError(tv, dir), undefined);
      } finally {
        await done();
      }
    });
  });
}
