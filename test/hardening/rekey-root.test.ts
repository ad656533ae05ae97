/**
 * rekey replaces the root key (issue 13, item 1). Bob's slot is copied out of the
 * database, bob is removed, the vault is rekeyed and a secret added: bob's passphrase
 * with his copied slot opens the old root key only, which opens neither the new data key
 * nor anything written since, and his old slot written back into the database with SQL
 * does not unlock the vault; alice and the key file still unlock; audit --verify holds
 * across the rekey. Then the new rekey is killed at each of its steps: the vault opens
 * with the old keys or the new ones. On SQLite and on MariaDB.
 */
process.env.PASSTORE_SCRYPT_LOG_N = '14';
process.env.PASSTORE_TEST_SWITCHES = 'for-tests-only';

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import type { SlotRow } from '../../src/storage/store.js';
import { associatedData, open } from '../../src/vault/aead.js';
import { openSlot, parseKeyring, subkey } from '../../src/vault/keyring.js';
import { Vault } from '../../src/vault/vault.js';
import { asRoot, backendsToRun, newPlace, type Backend } from '../faults/harness.js';
import { createTestVault, PASSPHRASE, type TestVault, runOk as ok } from '../support/scripted.js';

const CHILD = fileURLToPath(new URL('../vault/rekey-child.js', import.meta.url));
const BOB = 'bob passphrase 12345';

/**
 * The fault harness's places (test/faults/harness.ts: a throwaway SQLite file or MariaDB
 * database), with SQL run as the database's administrator (`asRoot`).
 */
async function openPlace(backend: Backend) {
  const p = await newPlace(backend, 'rekeyroot');
  return {
    db: p.db,
    dbPasswordFile: p.passwordFile,
    sql: (statement: string) => asRoot(p, statement),
    async cleanup() {
      await p.remove();
    },
  };
}

const backends = (await backendsToRun()).map(({ backend, skip }) => ({ name: backend, skip, create: () => openPlace(backend) }));

async function get(tv: TestVault, spec: string): Promise<string> {
  tv.io.revealed.length = 0;
  await ok(tv, `get ${spec}`);
  return tv.io.revealed[0]!.replace(/^[^=]*=/, '');
}

const hex = (b: Buffer) => `X'${b.toString('hex')}'`;
const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

for (const backend of backends) {
  describe(`rekey replaces the root key (${backend.name})`, { skip: backend.skip }, () => {
    test("bob's copied slot opens nothing written after operator rm and rekey; the others still unlock", async () => {
      const place = await backend.create();
      const tv = await createTestVault({ db: place.db, dbPasswordFile: place.dbPasswordFile, domain: 'example.org' });
      try {
        const keyfile = join(tv.dir, 'cron.key');
        await ok(tv, 'operator add bob', BOB, BOB);
        await ok(tv, `keyfile create ${keyfile}`, PASSPHRASE);
        await ok(tv, 'host add old-01');
        await ok(tv, 'add old-01', 'the old secret one', 'the old secret one');
        const store = tv.session.store;

        // What bob keeps: his slot and the vault row, as a copy of the database holds them.
        const bobSlot = (await store.getSlot('passphrase', 'bob'))!;
        const oldVault = (await store.getVault())!;
        const oldRoot = (await openSlot(tv.session.vault.id, bobSlot, Buffer.from(BOB)))!.root;

        const rm = await ok(tv, 'operator rm bob', 'y');
        assert.match(rm, /removed operator bob; run rekey to cut them off/);
        assert.match(await ok(tv, 'operator list'), /removed since the last rekey: bob; run rekey to cut them off/);
        await ok(tv, 'rekey', 'y');
        const list = await ok(tv, 'operator list');
        assert.match(list, /root key last replaced by rekey at /);
        assert.doesNotMatch(list, /removed since the last rekey/);
        await ok(tv, 'host add new-01');
        await ok(tv, 'add new-01', 'the new secret two', 'the new secret two');

        // Bob's old root key against what is in the database now.
        const now = (await store.getVault())!;
        const keyring = parseKeyring(now.keyring)!;
        assert.equal(keyring.rootGeneration, 2);
        const ad = associatedData(now.id, 'data-key', now.dataKeyGeneration);
        for (const candidate of [oldRoot, subkey(oldRoot, now.id, 'data-key wrap')]) {
          assert.equal(open(candidate, now.dataKeyCiphertext, ad), undefined, "bob's root key does not open the new data key");
        }
        const oldWrap = subkey(oldRoot, now.id, 'data-key wrap');
        const oldData = open(oldWrap, oldVault.dataKeyCiphertext, associatedData(now.id, 'data-key', oldVault.dataKeyGeneration))!;
        assert.ok(oldData, 'bob did hold the old data key');
        const entry = (await store.getEntry('new-01.example.org', 'root', 'ssh'))!;
        assert.equal(open(oldData, entry.secretCiphertext!, associatedData(now.id, 'password', entry.fqdn, 'root', 'ssh', entry.version)), undefined, 'nor the new secret');
        for (const slot of await store.listSlots()) {
          assert.equal(await openSlot(now.id, slot, Buffer.from(BOB)), undefined, `bob's passphrase opens no remaining slot (${slot.name})`);
        }

        // Bob's old slot written back with SQL, as the database's administrator.
        const s: SlotRow = bobSlot;
        await place.sql(
          `INSERT INTO key_slots (kind, name, kdf, root_key_ciphertext, failed_attempts, created_at, created_by) VALUES ('passphrase', 'bob', ${quote(s.kdf)}, ${hex(s.rootKeyCiphertext.bytes)}, 0, ${quote(s.createdAt)}, 'alice')`,
        );
        const asBob = await openStore(place.db!, place.dbPasswordFile);
        try {
          const v = (await Vault.load(asBob))!;
          await assert.rejects(v.unlockWithPassphrase('bob', Secret.fromString(BOB)), /data key does not decrypt/);
          assert.equal(v.unlocked, false);
        } finally {
          await asBob.close();
        }
        assert.match(await ok(tv, 'operator list'), /bob .*older than the last rekey/);
        await ok(tv, 'operator rm bob', 'y');

        // Alice and the key file still unlock and read everything; the trail verifies.
        const alice = await tv.reopen('alice', PASSPHRASE);
        assert.equal(await get(alice, 'old-01'), 'the old secret one');
        assert.equal(await get(alice, 'new-01'), 'the new secret two');
        assert.match(await ok(alice, 'audit --verify'), /audit trail intact/);
        await alice.close();
        const byFile = await openStore(place.db!, place.dbPasswordFile);
        try {
          const v = (await Vault.load(byFile))!;
          await v.unlockWithKeyfile(keyfile);
          const e = (await byFile.getEntry('new-01.example.org', 'root', 'ssh'))!;
          const secret = v.openPassword(e);
          assert.equal(secret.reveal(), 'the new secret two');
          secret.wipe();
          v.lock();
        } finally {
          await byFile.close();
        }
      } finally {
        await tv.close();
        rmSync(tv.dir, { recursive: true, force: true });
        await place.cleanup();
      }
    });

    test('rekey killed at each of its steps leaves the old keys or the new ones', async () => {
      const steps = ['rekey-secrets-read', 'rekey-in-transaction', 'rekey-data-key-set', 'rekey-slot-rewrapped', 'rekey-before-commit', 'rekey-committed'];
      const place = await backend.create();
      const tv = await createTestVault({ db: place.db, dbPasswordFile: place.dbPasswordFile, domain: 'example.org' });
      const keyfile = join(tv.dir, 'cron.key');
      try {
        await ok(tv, 'operator add bob', BOB, BOB);
        await ok(tv, `keyfile create ${keyfile}`, PASSPHRASE);
        for (const h of ['k-01', 'k-02', 'k-03']) {
          await ok(tv, `host add ${h}`);
          await ok(tv, `add ${h}`, `password of ${h}`, `password of ${h}`);
        }
        await tv.close();
        let generation = 1;
        for (const step of steps) {
          const child = spawn(process.execPath, [CHILD, place.db!, place.dbPasswordFile ?? '', 'alice', '0'], {
            env: { ...process.env, PASSTORE_CRASH_AT: step },
            stdio: ['pipe', 'pipe', 'pipe'],
          });
          child.stdin.end(PASSPHRASE);
          let err = '';
          child.stderr.on('data', (d) => (err += d));
          const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
          assert.equal(signal, 'SIGKILL', `the child died at ${step}: ${err}`);
          // Every way in still opens every secret, with the old keys or the new ones.
          const store = await openStore(place.db!, place.dbPasswordFile);
          try {
            const row = (await store.getVault())!;
            const gen = parseKeyring(row.keyring)?.rootGeneration ?? 1;
            assert.ok(gen === generation || gen === generation + 1, `${step}: root generation ${gen}`);
            if (step === 'rekey-committed') assert.equal(gen, generation + 1, 'killed after the commit: the new keys');
            if (step !== 'rekey-committed') assert.equal(gen, generation, `killed before the commit (${step}): the old keys`);
            generation = gen;
            for (const who of ['alice', 'bob', 'keyfile'] as const) {
              const v = (await Vault.load(store))!;
              if (who === 'keyfile') await v.unlockWithKeyfile(keyfile);
              else await v.unlockWithPassphrase(who, Secret.fromString(who === 'alice' ? PASSPHRASE : BOB));
              for (const h of ['k-01', 'k-02', 'k-03']) {
                const secret = v.openPassword((await store.getEntry(`${h}.example.org`, 'root', 'ssh'))!);
                assert.equal(secret.reveal(), `password of ${h}`, `${step}: ${who} reads ${h}`);
                secret.wipe();
              }
              v.lock();
            }
          } finally {
            await store.close();
          }
        }
        assert.equal(generation, 2, 'the last kill (after the commit) left the new keys');
      } finally {
        rmSync(tv.dir, { recursive: true, force: true });
        await place.cleanup();
      }
    });
  });
}
