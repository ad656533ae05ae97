/**
 * The storage conformance suite: one set of tests, run against every back end (SQLite
 * and MariaDB) through `openStore`, as the vault would use them. Real databases only:
 * a throwaway SQLite file, a throwaway MariaDB database.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PasstoreError } from '../../src/errors.js';
import { globToLike } from '../../src/names.js';
import type { SqlDriver } from '../../src/storage/driver.js';
import { migrate, migrationsFor } from '../../src/storage/migrate.js';
import { MysqlDriver, readDbPassword } from '../../src/storage/mysql-driver.js';
import { openStore } from '../../src/storage/open.js';
import { SqliteDriver } from '../../src/storage/sqlite-driver.js';
import type { AuditRow, HostRow, Store } from '../../src/storage/store.js';
import { associatedData, seal } from '../../src/vault/aead.js';
import type { Ciphertext } from '../../src/vault/ciphertext.js';
import { stampText } from '../../src/vault/entry-tags.js';
import { createTestDatabase, mariadbSkip } from '../support/mariadb.js';

/** A database for one back end: where it is, a raw driver on it, and how to remove it. */
interface Place {
  db: string;
  passwordFile?: string;
  driver(): Promise<SqlDriver>;
  cleanup(): Promise<void>;
}

interface Backend {
  name: string;
  skip: string | false;
  create(): Promise<Place>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'passtore-store-'));
      const path = join(dir, 'vault.db');
      return {
        db: `sqlite:${path}`,
        driver: async () => SqliteDriver.open(path),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'mariadb',
    skip: await mariadbSkip(),
    async create() {
      const t = await createTestDatabase();
      return {
        db: t.url,
        passwordFile: t.passwordFile,
        driver: () => MysqlDriver.open(t.url, readDbPassword(t.passwordFile)),
        cleanup: () => t.drop(),
      };
    },
  },
];

const KEY = randomBytes(32);
/** A real ciphertext (the store only ever sees these). */
const sealed = (text: string): Ciphertext => seal(KEY, Buffer.from(text), associatedData('store-test', text));
const NOW = '2024-05-01T12:00:00.000Z';

async function assertPasstoreError(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PasstoreError, `expected a PasstoreError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

function auditRow(seq: number, target: string, operator = 'alice'): AuditRow {
  const hash = createHash('sha256').update(`record ${seq} ${target}`).digest('hex');
  return {
    seq,
    at: NOW,
    operator,
    action: 'add',
    target,
    outcome: 'ok',
    detail: '',
    prevHash: seq === 1 ? '0'.repeat(64) : createHash('sha256').update(`prev ${seq}`).digest('hex'),
    hash,
    mac: seq % 2 === 0 ? null : createHash('sha256').update(`mac ${seq}`).digest('hex'),
  };
}

for (const backend of backends) {
  describe(`store conformance: ${backend.name}`, { skip: backend.skip }, () => {
    let place: Place;
    let store: Store;
    const extra: Array<{ close(): Promise<void> }> = [];

    before(async () => {
      place = await backend.create();
      store = await openStore(place.db, place.passwordFile);
    });

    after(async () => {
      for (const s of extra) await s.close().catch(() => undefined);
      await store?.close();
      await place?.cleanup();
    });

    const fqdns = (hosts: HostRow[]) => hosts.map((h) => h.fqdn);

    test('migrations are recorded once and re-running them changes nothing', async () => {
      const expected = migrationsFor(store.dialect);
      assert.ok(expected.length >= 1);
      const driver = await place.driver();
      extra.push(driver);
      const latest = expected.at(-1)!.version;
      assert.equal(await migrate(driver), latest);
      assert.equal(await migrate(driver), latest);
      const rows = await driver.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(rows.map((r) => Number(r.version)), expected.map((m) => m.version));
      // Opening again (a second program start) works on the migrated schema.
      const again = await openStore(place.db, place.passwordFile);
      extra.push(again);
      assert.equal(await again.countHosts(), await store.countHosts());
    });

    test('a schema newer than this passtore is refused, not misread', async () => {
      const driver = await place.driver();
      extra.push(driver);
      await driver.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [999, '999-future.sql', NOW]);
      try {
        await assertPasstoreError(openStore(place.db, place.passwordFile), 'storage', /schema is version 999, newer/);
      } finally {
        await driver.run('DELETE FROM schema_migrations WHERE version = 999');
      }
    });

    test('the vault row is created once; a second is refused', async () => {
      assert.equal(await store.getVault(), undefined);
      const dataKey = sealed('data key');
      await store.createVault({ id: 'vault-1', createdAt: NOW, dataKeyGeneration: 1, dataKeyCiphertext: dataKey });
      const row = await store.getVault();
      assert.ok(row);
      assert.equal(row.id, 'vault-1');
      assert.equal(row.createdAt, NOW);
      assert.equal(row.dataKeyGeneration, 1);
      assert.ok(row.dataKeyCiphertext.bytes.equals(dataKey.bytes));
      await assertPasstoreError(store.createVault({ id: 'vault-2', createdAt: NOW, dataKeyGeneration: 1, dataKeyCiphertext: dataKey }), 'exists');
      assert.equal((await store.getVault())!.id, 'vault-1');
      const next = sealed('data key 2');
      await store.setDataKey(2, next);
      const after = await store.getVault();
      assert.equal(after!.dataKeyGeneration, 2);
      assert.ok(after!.dataKeyCiphertext.bytes.equals(next.bytes));
    });

    test('key slots: add, get, duplicate refused, rewrap, failed attempts, delete', async () => {
      const wrapped = sealed('root for alice');
      await store.addSlot({ kind: 'passphrase', name: 'alice', kdf: '{"alg":"scrypt"}', rootKeyCiphertext: wrapped, createdAt: NOW, createdBy: 'alice' });
      const slot = await store.getSlot('passphrase', 'alice');
      assert.ok(slot);
      assert.equal(slot.kind, 'passphrase');
      assert.equal(slot.name, 'alice');
      assert.equal(slot.kdf, '{"alg":"scrypt"}');
      assert.equal(slot.failedAttempts, 0);
      assert.equal(slot.createdBy, 'alice');
      assert.ok(slot.rootKeyCiphertext.bytes.equals(wrapped.bytes));

      await assertPasstoreError(
        store.addSlot({ kind: 'passphrase', name: 'alice', kdf: '{}', rootKeyCiphertext: sealed('other'), createdAt: NOW, createdBy: 'mallory' }),
        'exists',
        /alice/,
      );
      assert.ok((await store.getSlot('passphrase', 'alice'))!.rootKeyCiphertext.bytes.equals(wrapped.bytes), 'the refused slot changed nothing');
      // The same name of another kind is another slot.
      await store.addSlot({ kind: 'keyfile', name: 'alice', kdf: '{"alg":"hkdf-sha256"}', rootKeyCiphertext: sealed('kf'), createdAt: NOW, createdBy: 'alice' });
      await store.addSlot({ kind: 'passphrase', name: 'bob', kdf: '{}', rootKeyCiphertext: sealed('root for bob'), createdAt: NOW, createdBy: 'alice' });
      assert.deepEqual((await store.listSlots()).map((s) => `${s.kind}:${s.name}`), ['keyfile:alice', 'passphrase:alice', 'passphrase:bob']);

      await store.setFailedAttempts(slot.id, 3);
      assert.equal((await store.getSlot('passphrase', 'alice'))!.failedAttempts, 3);
      const rewrapped = sealed('root for alice, new passphrase');
      await store.rewrapSlot(slot.id, '{"alg":"scrypt","v":2}', rewrapped);
      const after = await store.getSlot('passphrase', 'alice');
      assert.equal(after!.kdf, '{"alg":"scrypt","v":2}');
      assert.ok(after!.rootKeyCiphertext.bytes.equals(rewrapped.bytes));
      assert.equal(after!.failedAttempts, 0, 'a rewrap resets the failure count');

      const bob = await store.getSlot('passphrase', 'bob');
      await store.deleteSlot(bob!.id);
      assert.equal(await store.getSlot('passphrase', 'bob'), undefined);
      assert.ok(await store.getSlot('passphrase', 'alice'), 'deleting one slot leaves the others');
    });

    const HOSTS = [
      'ui-01.example.org',
      'ui-02.example.org',
      'ui-10.example.org',
      'wn-01.example.org',
      'wn-02.example.org',
      'wn-10.example.org',
      'db-01.example.org',
      'ui-01.other.net',
    ];

    test('hosts: add, get, duplicate refused, count', async () => {
      for (const fqdn of HOSTS) {
        const row = await store.addHost({ fqdn, address: fqdn === 'db-01.example.org' ? '192.0.2.7' : null, port: fqdn === 'db-01.example.org' ? 2222 : 22, createdAt: NOW });
        assert.ok(row.id > 0);
        assert.equal(row.fqdn, fqdn);
      }
      const db = await store.getHost('db-01.example.org');
      assert.ok(db && db.id > 0);
      assert.deepEqual([db.fqdn, db.address, db.port, db.createdAt], ['db-01.example.org', '192.0.2.7', 2222, NOW]);
      const ui = (await store.getHost('ui-01.example.org'))!;
      assert.deepEqual([ui.address, ui.port], [null, 22]);
      assert.equal(await store.getHost('db-02.example.org'), undefined);
      await assertPasstoreError(store.addHost({ fqdn: 'ui-01.example.org', address: null, port: 22, createdAt: NOW }), 'exists', /ui-01\.example\.org/);
      assert.equal(await store.countHosts(), HOSTS.length);
    });

    test('findHosts: globs with * and ?, sorted, with a limit', async () => {
      assert.deepEqual(fqdns(await store.findHosts('ui-*.example.org')), ['ui-01.example.org', 'ui-02.example.org', 'ui-10.example.org']);
      assert.deepEqual(fqdns(await store.findHosts('wn-0?.example.org')), ['wn-01.example.org', 'wn-02.example.org']);
      assert.deepEqual(fqdns(await store.findHosts('*')), [...HOSTS].sort());
      assert.deepEqual(fqdns(await store.findHosts('*-01.*')), ['db-01.example.org', 'ui-01.example.org', 'ui-01.other.net', 'wn-01.example.org']);
      assert.deepEqual(fqdns(await store.findHosts('ui-01.*')), ['ui-01.example.org', 'ui-01.other.net']);
      assert.deepEqual(fqdns(await store.findHosts('?n-1?.example.org')), ['wn-10.example.org']);
      assert.deepEqual(fqdns(await store.findHosts('db-01.example.org')), ['db-01.example.org'], 'a glob without wildcards is one exact name');
      assert.deepEqual(fqdns(await store.findHosts('ui-0?')), [], 'a glob is anchored at its end');
      assert.deepEqual(fqdns(await store.findHosts('*.example')), [], 'a glob is anchored at its end');
      assert.deepEqual(fqdns(await store.findHosts('i-01*')), [], 'a glob is anchored at its start');
      assert.deepEqual(fqdns(await store.findHosts('*', 2)), ['db-01.example.org', 'ui-01.example.org']);
      assert.deepEqual(fqdns(await store.findHosts('ui-*.example.org', 1)), ['ui-01.example.org']);
    });

    test('findHosts: % _ and ! in a glob are never SQL wildcards', async () => {
      // Each of these would match stored hosts if the character reached LIKE unescaped.
      for (const glob of ['%', '%.example.org', '*%', '*_*', '_i-01.example.org', 'ui-0_.example.org', 'ui-%', 'ui-%.example.org', '*!-01.example.org', 'ui!-01.example.org', '*!%', '?%']) {
        assert.deepEqual(fqdns(await store.findHosts(glob)), [], `glob ${glob} matched hosts`);
      }
      // And the LIKE pattern built for them escapes each one.
      assert.equal(globToLike('*_%!?'), '%!_!%!!_');
    });

    test('findHosts: % and _ in a pattern are literal; a stored name holding them is refused when read', async () => {
      // The store writes any name (the shell's parser never lets these through); reading
      // one back is an integrity error: a row passtore never wrote is not trusted.
      const odd = await store.addHost({ fqdn: 'lit_%!.odd.test', address: null, port: 22, createdAt: NOW });
      const plain = await store.addHost({ fqdn: 'litxyz.odd.test', address: null, port: 22, createdAt: NOW });
      assert.deepEqual(fqdns(await store.findHosts('litxyz.*')), ['litxyz.odd.test']);
      assert.deepEqual(fqdns(await store.findHosts('li_xyz.odd.test')), [], '_ is not a one-character wildcard');
      assert.deepEqual(fqdns(await store.findHosts('%.odd.test')), [], '% is not a wildcard');
      await assert.rejects(store.findHosts('lit_%!.*'), (e: Error & { code?: string }) => e.code === 'integrity' && /host 'lit_%!\.odd\.test'/.test(e.message));
      await assert.rejects(store.getHost('lit_%!.odd.test'), (e: Error & { code?: string }) => e.code === 'integrity');
      await store.removeHost(odd.id);
      await store.removeHost(plain.id);
      assert.deepEqual(fqdns(await store.findHosts('*.odd.test')), []);
      assert.equal(await store.countHosts(), HOSTS.length);
    });

    test('hostNamesWithPrefix: sorted, limited, prefix only', async () => {
      assert.deepEqual(await store.hostNamesWithPrefix('ui-', 10), ['ui-01.example.org', 'ui-01.other.net', 'ui-02.example.org', 'ui-10.example.org']);
      assert.deepEqual(await store.hostNamesWithPrefix('ui-', 2), ['ui-01.example.org', 'ui-01.other.net']);
      assert.deepEqual(await store.hostNamesWithPrefix('wn-1', 10), ['wn-10.example.org']);
      assert.deepEqual(await store.hostNamesWithPrefix('', 3), ['db-01.example.org', 'ui-01.example.org', 'ui-01.other.net']);
      assert.deepEqual(await store.hostNamesWithPrefix('zz', 10), []);
      assert.deepEqual(await store.hostNamesWithPrefix('ui-%', 10), [], '% is not a wildcard in a prefix');
      assert.deepEqual(await store.hostNamesWithPrefix('xample', 10), [], 'a prefix is not a substring');
    });

    test('entries: insert, get, find, duplicates refused, distinct users and services', async () => {
      const ui01 = (await store.getHost('ui-01.example.org'))!;
      const ui02 = (await store.getHost('ui-02.example.org'))!;
      const db01 = (await store.getHost('db-01.example.org'))!;
      const pw = sealed('pw ui-01 root ssh');
      await store.insertEntry({ hostId: ui01.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: pw, updatedAt: NOW, updatedBy: 'alice' });
      await store.insertEntry({ hostId: ui01.id, user: 'admin', service: 'ipmi', version: 1, state: 'set', secretCiphertext: sealed('ipmi'), updatedAt: NOW, updatedBy: 'alice' });
      await store.insertEntry({ hostId: ui02.id, user: 'root', service: 'ssh', version: 1, state: 'unset', secretCiphertext: null, updatedAt: NOW, updatedBy: 'bob' });
      await store.insertEntry({ hostId: db01.id, user: 'nicedb', service: 'mysql', version: 1, state: 'set', secretCiphertext: sealed('db'), updatedAt: NOW, updatedBy: 'bob' });

      const e = await store.getEntry('ui-01.example.org', 'root', 'ssh');
      assert.ok(e);
      assert.equal(e.hostId, ui01.id);
      assert.equal(e.fqdn, 'ui-01.example.org');
      assert.equal(e.version, 1);
      assert.equal(e.state, 'set');
      assert.equal(e.updatedBy, 'alice');
      assert.ok(e.secretCiphertext!.bytes.equals(pw.bytes));
      const unset = await store.getEntry('ui-02.example.org', 'root', 'ssh');
      assert.equal(unset!.state, 'unset');
      assert.equal(unset!.secretCiphertext, null);
      assert.equal(await store.getEntry('ui-01.example.org', 'root', 'ipmi'), undefined);
      assert.equal(await store.getEntry('ui-01.other.net', 'root', 'ssh'), undefined);

      const spec = (rows: Array<{ user: string; fqdn: string; service: string }>) => rows.map((r) => `${r.user}@${r.fqdn}:${r.service}`);
      assert.deepEqual(spec(await store.findEntries('ui-*.example.org')), ['admin@ui-01.example.org:ipmi', 'root@ui-01.example.org:ssh', 'root@ui-02.example.org:ssh']);
      assert.deepEqual(spec(await store.findEntries('*', 'root')), ['root@ui-01.example.org:ssh', 'root@ui-02.example.org:ssh']);
      assert.deepEqual(spec(await store.findEntries('*', 'root', 'ssh')), ['root@ui-01.example.org:ssh', 'root@ui-02.example.org:ssh']);
      assert.deepEqual(spec(await store.findEntries('*', undefined, 'mysql')), ['nicedb@db-01.example.org:mysql']);
      assert.deepEqual(spec(await store.findEntries('ui-0_.example.org')), [], '_ is not a wildcard');
      assert.deepEqual(spec(await store.findEntries('%')), [], '% is not a wildcard');
      // What list reads: the same names and states in the same order, without ciphertexts.
      for (const glob of ['*', 'ui-*.example.org', 'ui-0_.example.org']) {
        const names = await store.listEntryNames(glob);
        assert.deepEqual(names, (await store.findEntries(glob)).map((e) => ({ fqdn: e.fqdn, user: e.user, service: e.service, state: e.state })), glob);
      }
      assert.ok((await store.listEntryNames('ui-*.example.org')).some((e) => e.state === 'unset'), 'an unset entry says so');
      // What the summary of what is current reads (src/vault/summary.ts): every entry's
      // name, version and state, or those of some ids or hosts, never a ciphertext.
      const all = await store.entryStamps();
      const found = await store.findEntries('*');
      const key = (e: { fqdn: string; user: string; service: string; version: number; state: string }) => `${e.user}@${e.fqdn}:${e.service} ${e.version} ${e.state}`;
      assert.deepEqual(all.map(key).sort(), found.map(key).sort());
      assert.ok(all.every((e) => !('secretCiphertext' in e)));
      const first = found[0]!;
      const onHost = found.filter((e) => e.hostId === ui01.id);
      assert.deepEqual((await store.entryStamps({ ids: [first.id] })).map((e) => e.id), [first.id]);
      assert.deepEqual((await store.entryStamps({ hostIds: [ui01.id] })).map((e) => e.id).sort(), onHost.map((e) => e.id).sort());
      assert.deepEqual((await store.entryStamps({ ids: [first.id], hostIds: [ui01.id] })).map((e) => e.id).sort(), [...new Set([first.id, ...onHost.map((e) => e.id)])].sort());
      assert.deepEqual(await store.entryStamps({ ids: [987654] }), []);
      // The same as the texts the summary's HMACs read (one read; SQLite writes the JSON
      // itself): equal to stampText's for every name a user or service may have.
      await store.insertEntry({ hostId: ui01.id, user: 'Ab_c.d-9', service: 'x.y_z-0', version: 7, state: 'unset', secretCiphertext: null, updatedAt: NOW, updatedBy: 'alice' });
      const texts = await store.entryStampTexts();
      assert.deepEqual([...texts].sort(), (await store.entryStamps()).map(stampText).sort());
      assert.ok(texts.includes('["ui-01.example.org","Ab_c.d-9","x.y_z-0",7,"unset"]'), texts.join(' '));
      await store.deleteEntry((await store.getEntry('ui-01.example.org', 'Ab_c.d-9', 'x.y_z-0'))!.id);
      // Another connection's commit moves SQLite's data_version; this one's own do not.
      if (backend.name === 'sqlite') {
        const v0 = await store.dataVersion();
        assert.equal(typeof v0, 'number');
        await store.removeHost((await store.addHost({ fqdn: 'dv.odd.test', address: null, port: 22, createdAt: NOW })).id);
        assert.equal(await store.dataVersion(), v0, 'its own commits');
        const other = await openStore(place.db);
        await other.removeHost((await other.addHost({ fqdn: 'dv.odd.test', address: null, port: 22, createdAt: NOW })).id);
        await other.close();
        assert.notEqual(await store.dataVersion(), v0, "another connection's commit");
      } else assert.equal(await store.dataVersion(), undefined);

      await assert.rejects(
        store.insertEntry({ hostId: ui01.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: sealed('dup'), updatedAt: NOW, updatedBy: 'mallory' }),
      );
      assert.ok((await store.getEntry('ui-01.example.org', 'root', 'ssh'))!.secretCiphertext!.bytes.equals(pw.bytes), 'the refused duplicate changed nothing');
      await assert.rejects(
        store.insertEntry({ hostId: 987654, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: sealed('orphan'), updatedAt: NOW, updatedBy: 'mallory' }),
        Error,
        'an entry on no host is refused',
      );

      assert.deepEqual(await store.distinctUsers(), ['admin', 'nicedb', 'root']);
      assert.deepEqual(await store.distinctServices(), ['ipmi', 'mysql', 'ssh']);
    });

    test('updateEntry checks the version: a stale one fails and changes nothing', async () => {
      const e = (await store.getEntry('ui-01.example.org', 'root', 'ssh'))!;
      const v2 = sealed('pw version 2');
      await store.updateEntry(e.id, 1, { version: 2, state: 'set', secretCiphertext: v2, updatedAt: '2024-05-02T00:00:00.000Z', updatedBy: 'bob' });
      const after = (await store.getEntry('ui-01.example.org', 'root', 'ssh'))!;
      assert.equal(after.version, 2);
      assert.equal(after.updatedBy, 'bob');
      assert.equal(after.updatedAt, '2024-05-02T00:00:00.000Z');
      assert.ok(after.secretCiphertext!.bytes.equals(v2.bytes));

      // Another session still holding version 1 loses, and nothing is written.
      await assertPasstoreError(
        store.updateEntry(e.id, 1, { version: 2, state: 'set', secretCiphertext: sealed('lost update'), updatedAt: NOW, updatedBy: 'mallory' }),
        'storage',
        /changed by another session/,
      );
      const still = (await store.getEntry('ui-01.example.org', 'root', 'ssh'))!;
      assert.equal(still.version, 2);
      assert.equal(still.updatedBy, 'bob');
      assert.ok(still.secretCiphertext!.bytes.equals(v2.bytes));

      // Setting a placeholder.
      const unset = (await store.getEntry('ui-02.example.org', 'root', 'ssh'))!;
      await store.updateEntry(unset.id, 1, { version: 2, state: 'set', secretCiphertext: sealed('now set'), updatedAt: NOW, updatedBy: 'bob' });
      assert.equal((await store.getEntry('ui-02.example.org', 'root', 'ssh'))!.state, 'set');
      await assertPasstoreError(store.updateEntry(424242, 1, { version: 2, state: 'set', secretCiphertext: null, updatedAt: NOW, updatedBy: 'x' }), 'storage');
    });

    test('history: archive, listHistory, lastVersion across delete', async () => {
      assert.equal(await store.lastVersion('ui-01.example.org', 'root', 'ssh'), 2);
      assert.equal(await store.lastVersion('wn-01.example.org', 'root', 'ssh'), 0, 'never stored: 0');
      const old = sealed('pw version 1');
      await store.archiveEntry({ fqdn: 'ui-01.example.org', user: 'root', service: 'ssh', version: 1, secretCiphertext: old, reason: 'updated', archivedAt: NOW, archivedBy: 'bob' });
      const e = (await store.getEntry('ui-01.example.org', 'root', 'ssh'))!;
      await store.archiveEntry({ fqdn: e.fqdn, user: e.user, service: e.service, version: e.version, secretCiphertext: e.secretCiphertext, reason: 'deleted', archivedAt: NOW, archivedBy: 'carol' });
      await store.deleteEntry(e.id);
      assert.equal(await store.getEntry('ui-01.example.org', 'root', 'ssh'), undefined);
      assert.equal(await store.lastVersion('ui-01.example.org', 'root', 'ssh'), 2, 'history keeps the version count after a delete');

      await store.archiveEntry({ fqdn: 'ui-01.example.org', user: 'admin', service: 'ipmi', version: 5, secretCiphertext: null, reason: 'updated', archivedAt: NOW, archivedBy: 'bob' });
      assert.equal(await store.lastVersion('ui-01.example.org', 'admin', 'ipmi'), 5, 'history above the current version counts');

      const all = await store.listHistory('ui-01.example.org');
      assert.deepEqual(all.map((h) => `${h.user}:${h.service}:${h.version}:${h.reason}:${h.archivedBy}`), [
        'root:ssh:1:updated:bob',
        'root:ssh:2:deleted:carol',
        'admin:ipmi:5:updated:bob',
      ]);
      assert.ok(all[0]!.secretCiphertext!.bytes.equals(old.bytes));
      assert.equal(all[2]!.secretCiphertext, null);
      assert.deepEqual((await store.listHistory('ui-01.example.org', 'root')).map((h) => h.version), [1, 2]);
      assert.deepEqual((await store.listHistory('ui-01.example.org', 'admin', 'ipmi')).map((h) => h.version), [5]);
      assert.deepEqual(await store.listHistory('ui-01.other.net'), []);
    });

    test('allSecrets and the rekey setters reach every ciphertext', async () => {
      const { entries, history } = await store.allSecrets();
      assert.ok(entries.length >= 3);
      assert.ok(history.length >= 3);
      const e = entries.find((x) => x.secretCiphertext)!;
      const h = history.find((x) => x.secretCiphertext)!;
      const ne = sealed('rekeyed entry');
      const nh = sealed('rekeyed history');
      await store.setEntryCiphertext(e.id, ne);
      await store.setHistoryCiphertext(h.id, nh);
      const again = await store.allSecrets();
      assert.ok(again.entries.find((x) => x.id === e.id)!.secretCiphertext!.bytes.equals(ne.bytes));
      assert.ok(again.history.find((x) => x.id === h.id)!.secretCiphertext!.bytes.equals(nh.bytes));
      assert.equal(again.entries.find((x) => x.id === e.id)!.version, e.version, 'only the ciphertext changes');
    });

    test('a transaction that throws rolls back every row it wrote', async () => {
      const hostsBefore = await store.countHosts();
      const auditBefore = (await store.listAudit()).length;
      const slotsBefore = (await store.listSlots()).length;
      const vaultBefore = (await store.getVault())!;
      await assert.rejects(
        store.transaction(async (tx) => {
          const h = await tx.addHost({ fqdn: 'rollback-01.example.org', address: null, port: 22, createdAt: NOW });
          await tx.insertEntry({ hostId: h.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: sealed('rolled back'), updatedAt: NOW, updatedBy: 'alice' });
          await tx.addSlot({ kind: 'passphrase', name: 'rollback', kdf: '{}', rootKeyCiphertext: sealed('rb'), createdAt: NOW, createdBy: 'alice' });
          await tx.setDataKey(vaultBefore.dataKeyGeneration + 1, sealed('new data key'));
          await tx.appendAudit(auditRow(9000, 'root@rollback-01.example.org:ssh'));
          // The transaction sees its own writes.
          assert.ok(await tx.getHost('rollback-01.example.org'));
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await store.getHost('rollback-01.example.org'), undefined);
      assert.deepEqual(await store.findEntries('rollback-*.example.org'), []);
      assert.equal(await store.countHosts(), hostsBefore);
      assert.equal((await store.listAudit()).length, auditBefore);
      assert.equal((await store.listSlots()).length, slotsBefore);
      const vaultAfter = (await store.getVault())!;
      assert.equal(vaultAfter.dataKeyGeneration, vaultBefore.dataKeyGeneration);
      assert.ok(vaultAfter.dataKeyCiphertext.bytes.equals(vaultBefore.dataKeyCiphertext.bytes));

      // A failing statement rolls back the statements before it, and its error comes through.
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.addHost({ fqdn: 'rollback-02.example.org', address: null, port: 22, createdAt: NOW });
          await tx.insertEntry({ hostId: 987654, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: sealed('x'), updatedAt: NOW, updatedBy: 'alice' });
        }),
      );
      assert.equal(await store.getHost('rollback-02.example.org'), undefined);

      // A PasstoreError thrown inside keeps its code; a nested transaction joins the outer one.
      await assertPasstoreError(
        store.transaction(async (tx) => {
          await tx.transaction(async (inner) => {
            await inner.addHost({ fqdn: 'rollback-03.example.org', address: null, port: 22, createdAt: NOW });
          });
          throw new PasstoreError('cancelled', 'stop');
        }),
        'cancelled',
      );
      assert.equal(await store.getHost('rollback-03.example.org'), undefined);

      // And one that returns commits everything.
      const value = await store.transaction(async (tx) => {
        await tx.addHost({ fqdn: 'commit-01.example.org', address: null, port: 22, createdAt: NOW });
        return 42;
      });
      assert.equal(value, 42);
      assert.ok(await store.getHost('commit-01.example.org'));
    });

    test('audit: append in order, list, limit, target filter, seal, no duplicate seq', async () => {
      assert.equal(await store.lastAudit(), undefined);
      const targets = ['root@ui-01.example.org:ssh', 'nice_db@db-01.example.org:mysql', 'niceXdb@db-01.example.org:mysql', 'operator:bob', 'root@ui-02.example.org:ssh'];
      for (const [i, t] of targets.entries()) await store.appendAudit(auditRow(i + 1, t, i % 2 ? 'bob' : 'alice'));
      const all = await store.listAudit();
      assert.deepEqual(all.map((r) => r.seq), [1, 2, 3, 4, 5]);
      assert.deepEqual(all[1], auditRow(2, targets[1]!, 'bob'), 'a record reads back exactly, NULL mac included');
      assert.deepEqual(all[0], auditRow(1, targets[0]!, 'alice'));
      assert.equal((await store.lastAudit())!.seq, 5);
      assert.deepEqual((await store.listAudit({ limit: 2 })).map((r) => r.seq), [4, 5], 'the last N, oldest first');
      assert.deepEqual((await store.listAudit({ limit: 50 })).map((r) => r.seq), [1, 2, 3, 4, 5]);
      assert.deepEqual((await store.listAudit({ targetLike: 'nice!_db@%' })).map((r) => r.seq), [2], 'an escaped _ matches only _');
      assert.deepEqual((await store.listAudit({ targetLike: 'nice_db@%' })).map((r) => r.seq), [2, 3]);
      assert.deepEqual((await store.listAudit({ targetLike: `%${globToLike('ui-0?.example.org')}%` })).map((r) => r.seq), [1, 5]);
      assert.deepEqual((await store.listAudit({ targetLike: '%', limit: 1 })).map((r) => r.seq), [5]);

      await assert.rejects(store.appendAudit(auditRow(3, 'root@evil.example.org:ssh', 'mallory')), Error, 'a second record with the same seq is refused');
      assert.equal((await store.listAudit())[2]!.target, targets[2]);

      const mac = 'f'.repeat(64);
      await store.setAuditMac(2, mac);
      assert.equal((await store.listAudit())[1]!.mac, mac);
      assert.equal((await store.listAudit())[0]!.mac, auditRow(1, targets[0]!).mac, 'only that record is sealed');
      assert.deepEqual((await store.auditAfter(2)).map((r) => r.seq), [3, 4, 5]);
      assert.deepEqual((await store.auditAfter(2, 1)).map((r) => r.seq), [3]);
      assert.deepEqual(await store.auditAfter(5), []);
    });

    test('pattern writes: insertEntries, lastVersions and appendAudits, across multi-row chunks', async () => {
      const hosts: Array<{ id: number; fqdn: string }> = [];
      await store.transaction(async (tx) => {
        for (let i = 0; i < 450; i++) hosts.push(await tx.addHost({ fqdn: `bulk-${String(i).padStart(3, '0')}.example.org`, address: null, port: 22, createdAt: NOW }));
      });
      await store.archiveEntry({ fqdn: 'bulk-007.example.org', user: 'root', service: 'bulk', version: 4, secretCiphertext: null, reason: 'deleted', archivedAt: NOW, archivedBy: 'bob' });
      const before = await store.lastVersions(hosts.map((h) => h.fqdn), 'root', 'bulk');
      assert.equal(before.size, 450);
      assert.equal(before.get('bulk-007.example.org'), 4, 'history counts');
      assert.equal(before.get('bulk-008.example.org'), 0, 'never stored: 0');
      await store.transaction((tx) =>
        tx.insertEntries(hosts.map((h) => ({ hostId: h.id, user: 'root', service: 'bulk', version: before.get(h.fqdn)! + 1, state: 'set' as const, secretCiphertext: sealed(`pw ${h.fqdn}`), updatedAt: NOW, updatedBy: 'alice' }))),
      );
      const rows = await store.findEntries('bulk-*', 'root', 'bulk');
      assert.equal(rows.length, 450, 'every row of every chunk');
      assert.equal(rows.find((e) => e.fqdn === 'bulk-007.example.org')!.version, 5);
      assert.equal(rows.find((e) => e.fqdn === 'bulk-449.example.org')!.version, 1);
      const after = await store.lastVersions(['bulk-007.example.org', 'bulk-449.example.org', 'none.example.org'], 'root', 'bulk');
      assert.deepEqual([...after], [['bulk-007.example.org', 5], ['bulk-449.example.org', 1], ['none.example.org', 0]]);
      for (const h of ['bulk-007.example.org', 'bulk-449.example.org']) assert.equal(after.get(h), await store.lastVersion(h, 'root', 'bulk'), 'the same as lastVersion');
      await store.archiveEntries(rows.map((e) => ({ fqdn: e.fqdn, user: e.user, service: e.service, version: e.version + 10, secretCiphertext: e.secretCiphertext, reason: 'updated', archivedAt: NOW, archivedBy: 'alice' })));
      assert.deepEqual((await store.listHistory('bulk-449.example.org', 'root', 'bulk')).map((h) => h.version), [11]);
      assert.equal((await store.lastVersions(['bulk-300.example.org'], 'root', 'bulk')).get('bulk-300.example.org'), 11, 'archived rows of every chunk count');
      const fresh = new Map(rows.map((e) => [e.id, sealed(`new ${e.fqdn}`)]));
      const update = (e: (typeof rows)[number], expectVersion = e.version) => ({ id: e.id, expectVersion, row: { version: 20, state: 'set' as const, secretCiphertext: fresh.get(e.id)!, updatedAt: NOW, updatedBy: 'bob' } });
      await store.transaction((tx) => tx.updateEntries(rows.map((e) => update(e))));
      const updated = await store.findEntries('bulk-*', 'root', 'bulk');
      assert.ok(updated.every((e) => e.version === 20 && e.updatedBy === 'bob'), 'every row of every chunk updated');
      assert.ok(updated.every((e) => e.secretCiphertext!.bytes.equals(fresh.get(e.id)!.bytes)), 'each row got its own ciphertext');
      const stale = updated.map((e, i) => update(e, i === 333 ? 19 : 20));
      await assert.rejects(store.transaction((tx) => tx.updateEntries(stale)), /changed by another session/, 'one stale version fails the batch');
      assert.ok((await store.findEntries('bulk-*', 'root', 'bulk')).every((e) => e.version === 20 && e.updatedBy === 'bob'), 'and nothing was changed');

      const first = ((await store.lastAudit())?.seq ?? 0) + 1;
      await store.appendAudits(Array.from({ length: 450 }, (_, i) => auditRow(first + i, `root@bulk-${i}.example.org:bulk`)));
      const trail = await store.listAudit({ targetLike: 'root@bulk-%' });
      assert.equal(trail.length, 450);
      assert.deepEqual(trail.at(-1), auditRow(first + 449, 'root@bulk-449.example.org:bulk'), 'the last record reads back exactly');
      await assert.rejects(store.appendAudits([auditRow(first + 450, 'x'), auditRow(first + 3, 'dup')]), Error, 'a duplicate seq refuses the batch');
    });

    const CERT_ROW = {
      subject: 'CN=chain.example.org',
      issuer: 'CN=Example Intermediate CA',
      serial: '01',
      sans: 'chain.example.org',
      notBefore: NOW,
      notAfter: '2030-01-01T00:00:00.000Z',
      pem: '-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n',
      storedAt: NOW,
      storedBy: 'alice',
      deployedAt: null,
    };

    test('certificates: the issuing chain is stored in the certificate row and read back by every reader; null stays null', async () => {
      const h = await store.addHost({ fqdn: 'chain.example.org', address: null, port: 22, createdAt: NOW });
      const chainPem = '-----BEGIN CERTIFICATE-----\nINTERMEDIATE\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nPOLICY CA\n-----END CERTIFICATE-----\n';
      const ids = [];
      for (const [i, chain] of [chainPem, null].entries()) {
        const spki = String(i + 1).repeat(64);
        const keyId = await store.insertKey({ hostId: h.id, spkiSha256: spki, keyType: 'ec-p256', state: 'current', origin: 'generated', keyCiphertext: sealed(`key ${i}`), createdAt: NOW, createdBy: 'alice' });
        ids.push(await store.transaction((tx) => tx.insertCertificate({ ...CERT_ROW, hostId: h.id, keyId, spkiSha256: spki, fingerprintSha256: String(i + 3).repeat(64), chainPem: chain, state: i === 0 ? 'current' : 'history' })));
      }
      const [withChain, without] = [await store.getCertificateByFingerprint('3'.repeat(64)), await store.getCertificateByFingerprint('4'.repeat(64))];
      assert.equal(withChain!.chainPem, chainPem);
      assert.equal(withChain!.pem, CERT_ROW.pem, 'the certificate column holds the certificate alone');
      assert.equal(without!.chainPem, null);
      assert.deepEqual((await store.listCertificates(h.id)).map((c) => [c.id, c.chainPem]), [[ids[1], null], [ids[0], chainPem]]);
      assert.equal((await store.currentCertificates('chain.example.org'))[0]!.chainPem, chainPem);
    });

    test('a vault at schema 10 (certificates without a chain column) migrates to 11 and keeps its certificates, with no chain', async () => {
      const old = await backend.create();
      const driver = await old.driver();
      try {
        assert.equal(await migrate(driver, 10), 10);
        await driver.run('INSERT INTO hosts (fqdn, address, port, created_at) VALUES (?, ?, ?, ?)', ['old.example.org', null, 22, NOW]);
        const [host] = await driver.all<{ id: number }>('SELECT id FROM hosts');
        await driver.run('INSERT INTO private_keys (host_id, spki_sha256, key_type, state, origin, key_ciphertext, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [host!.id, '5'.repeat(64), 'ec-p256', 'current', 'generated', Buffer.from(sealed('old key').bytes), NOW, 'alice']);
        const [key] = await driver.all<{ id: number }>('SELECT id FROM private_keys');
        await driver.run(
          'INSERT INTO certificates (host_id, key_id, spki_sha256, fingerprint_sha256, subject, issuer, serial, sans, not_before, not_after, pem, state, stored_at, stored_by, deployed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          [host!.id, key!.id, '5'.repeat(64), '6'.repeat(64), CERT_ROW.subject, CERT_ROW.issuer, CERT_ROW.serial, CERT_ROW.sans, NOW, CERT_ROW.notAfter, CERT_ROW.pem, 'current', NOW, 'alice', null],
        );
        const upgraded = await openStore(old.db, old.passwordFile);
        try {
          const rows = await driver.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
          assert.equal(Number(rows.at(-1)!.version), migrationsFor(store.dialect).at(-1)!.version, 'migrated to the latest schema');
          const c = (await upgraded.getCertificateByFingerprint('6'.repeat(64)))!;
          assert.equal(c.pem, CERT_ROW.pem);
          assert.equal(c.chainPem, null, 'a certificate stored before 011 has no chain');
          assert.equal(c.fqdn, 'old.example.org');
        } finally {
          await upgraded.close();
        }
      } finally {
        await driver.close();
        await old.cleanup();
      }
    });

    test('keys: moveKey gives a key to another host with its new ciphertext; deleteKey removes it and frees its SPKI', async () => {
      const a = await store.addHost({ fqdn: 'key-a.example.org', address: null, port: 22, createdAt: NOW });
      const b = await store.addHost({ fqdn: 'key-b.example.org', address: null, port: 22, createdAt: NOW });
      const spki = 'ab'.repeat(32);
      const row = { hostId: a.id, spkiSha256: spki, keyType: 'ec-p256', state: 'pending' as const, origin: 'imported' as const, keyCiphertext: sealed('key for a'), createdAt: NOW, createdBy: 'alice' };
      const id = await store.insertKey(row);
      const resealed = sealed('key for b');
      await store.moveKey(id, b.id, resealed);
      const moved = (await store.getKeyBySpki(spki))!;
      assert.equal(moved.fqdn, 'key-b.example.org');
      assert.ok(Buffer.from(moved.keyCiphertext.bytes).equals(Buffer.from(resealed.bytes)), 'its new ciphertext');
      assert.deepEqual((await store.listKeys(a.id)).length, 0);
      await store.deleteKey(id);
      assert.equal(await store.getKeyBySpki(spki), undefined);
      assert.ok((await store.insertKey({ ...row, hostId: b.id })) > 0, 'the same key can be stored again');
    });
  });
}
