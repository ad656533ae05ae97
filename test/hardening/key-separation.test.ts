/**
 * Key separation and the migration of existing vaults (issue 13, item 8): the root key
 * is never a key itself (the data key opens with its data-key subkey, not with the root
 * key); a vault made before schema 8 (slots wrapping the root key directly, the data key
 * under the root key, the audit key derived from it) still unlocks, its slot moves to
 * the new format at that unlock, and the first rekey brings in the keyring with the
 * audit trail still verifying; generated passwords use the 69 symbols stated.
 */
process.env.PASSTORE_SCRYPT_LOG_N = '14';
process.env.PASSTORE_TEST_SWITCHES = 'for-tests-only';

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import { associatedData, open, seal } from '../../src/vault/aead.js';
import { appendAudit, verifyChain } from '../../src/vault/audit.js';
import { defaultScrypt, deriveSlotKey } from '../../src/vault/kdf.js';
import { legacyAuditKey, parseKeyring, slotSeal, subkey } from '../../src/vault/keyring.js';
import { Vault } from '../../src/vault/vault.js';

test('a new vault wraps its data key under a subkey, never under the root key itself', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'passtore-keysep-'));
  try {
    const store = await openStore(`sqlite:${join(dir, 'v.db')}`);
    const vault = await Vault.create(store, 'alice', Secret.fromString('a passphrase of alice'));
    const root = vault.rootKeyCopy();
    const row = (await store.getVault())!;
    const ad = associatedData(row.id, 'data-key', 1);
    assert.equal(open(root, row.dataKeyCiphertext, ad), undefined);
    assert.ok(open(subkey(root, row.id, 'data-key wrap'), row.dataKeyCiphertext, ad));
    const keys = (['data-key wrap', 'audit-key wrap', 'slot mac', 'backup'] as const).map((p) => subkey(root, row.id, p).toString('hex'));
    assert.equal(new Set([...keys, root.toString('hex'), vault.auditKey()!.toString('hex')]).size, 6, 'every purpose has its own key');
    vault.lock();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a vault made before schema 8 unlocks, moves its slot on, and rekeys with its audit trail intact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'passtore-legacy-'));
  try {
    const store = await openStore(`sqlite:${join(dir, 'v.db')}`);
    // The old layout, built by hand as passtore wrote it.
    const id = randomUUID();
    const root = randomBytes(32);
    const data = randomBytes(32);
    const now = new Date().toISOString();
    const params = defaultScrypt();
    const kek = await deriveSlotKey(params, Buffer.from('old passphrase 1'));
    await store.transaction(async (tx) => {
      await tx.createVault({ id, createdAt: now, dataKeyGeneration: 1, dataKeyCiphertext: seal(root, data, associatedData(id, 'data-key', 1)) });
      await tx.addSlot({ kind: 'passphrase', name: 'alice', kdf: JSON.stringify(params), rootKeyCiphertext: seal(kek, root, associatedData(id, 'slot', 'passphrase', 'alice')), createdAt: now, createdBy: 'alice' });
      const host = await tx.addHost({ fqdn: 'h.example.org', address: null, port: 22, createdAt: now });
      await tx.insertEntry({ hostId: host.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: seal(data, Buffer.from('legacy password'), associatedData(id, 'password', 'h.example.org', 'root', 'ssh', 1)), updatedAt: now, updatedBy: 'alice' });
      await appendAudit(tx, 'alice', { action: 'init', target: 'vault', outcome: 'ok' }, legacyAuditKey(root, id));
    });

    const vault = (await Vault.load(store))!;
    await vault.unlockWithPassphrase('alice', Secret.fromString('old passphrase 1'));
    assert.ok(slotSeal((await store.getSlot('passphrase', 'alice'))!.kdf), 'the slot moved to the new format at its unlock');
    assert.equal((await store.getVault())!.keyring, null, 'the vault keeps its layout until a rekey');
    const entry = (await store.getEntry('h.example.org', 'root', 'ssh'))!;
    assert.equal(vault.openPassword(entry).reveal(), 'legacy password');
    await appendAudit(store, 'alice', { action: 'get', target: 'h.example.org', outcome: 'ok' }, vault.auditKey());

    await vault.rekey(async (tx) => void (await appendAudit(tx, 'alice', { action: 'rekey', target: 'vault', outcome: 'ok' }, vault.auditKey())));
    const row = (await store.getVault())!;
    assert.equal(parseKeyring(row.keyring)?.rootGeneration, 2);
    const again = (await Vault.load(store))!;
    await again.unlockWithPassphrase('alice', Secret.fromString('old passphrase 1'));
    assert.equal(again.openPassword((await store.getEntry('h.example.org', 'root', 'ssh'))!).reveal(), 'legacy password');
    assert.ok(again.auditKey()!.equals(legacyAuditKey(root, id)), 'the audit key is carried over');
    const report = verifyChain(await store.listAudit(), again.auditKey()!, row.auditHead);
    assert.deepEqual(report.problems, []);
    assert.equal(report.macs, 3);
    again.lock();
    vault.lock();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('generated passwords: 24 symbols of the 69 stated', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 400; i++) {
    const s = Secret.generate();
    assert.equal(s.length, 24);
    for (const c of s.reveal()) seen.add(c);
    s.wipe();
  }
  assert.equal(seen.size, 69);
});
