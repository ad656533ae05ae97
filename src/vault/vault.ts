/**
 * The vault: the security barrier between plaintext and storage.
 *
 * Key hierarchy: each key slot (one passphrase per operator, key files for automation)
 * wraps the same random root key; the root key wraps the data key, and derives the audit
 * key. The data key encrypts every secret. Changing a passphrase rewraps one slot;
 * `rekey` replaces the data key and re-encrypts every secret in one transaction.
 * Only this module turns a Secret into Ciphertext and back.
 */
import { step } from '../faults.js';
import { hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PasstoreError } from '../errors.js';
import { formatSpec } from '../names.js';
import { Secret } from '../secret.js';
import type { EntryRow, HistoryRow, KeyRow, SlotKind, SlotRow, SshKeyRow, Store, VaultRow } from '../storage/store.js';
import { associatedData, open, seal } from './aead.js';
import { Ciphertext } from './ciphertext.js';
import { defaultScrypt, deriveSlotKey, newHkdf, parseKdf, type KdfParams } from './kdf.js';

const KEYFILE_HEADER = 'passtore-keyfile 1';

/** The identity a password ciphertext is bound to. */
export interface PasswordIdentity {
  fqdn: string;
  user: string;
  service: string;
  version: number;
}

export interface UnlockOptions {
  /** First delay after a wrong passphrase; it doubles with each further failure (max 30 s). */
  failureDelayMs?: number;
}

/** The delay after the `count`-th consecutive wrong passphrase. */
export function failureDelay(count: number, baseMs: number): number {
  if (count <= 0) return 0;
  return Math.min(baseMs * 2 ** (count - 1), 30_000);
}

export class Vault {
  readonly id: string;
  #store: Store;
  #row: VaultRow;
  #root: Buffer | undefined;
  #data: Buffer | undefined;
  #slot: { kind: SlotKind; name: string } | undefined;
  #auditKey: Buffer | undefined;

  private constructor(store: Store, row: VaultRow) {
    this.#store = store;
    this.#row = row;
    this.id = row.id;
  }

  /** The vault in `store`, locked, or undefined when none was created yet. */
  static async load(store: Store): Promise<Vault | undefined> {
    const row = await store.getVault();
    return row ? new Vault(store, row) : undefined;
  }

  /** Creates a vault with one passphrase slot; returns it unlocked. */
  static async create(store: Store, operator: string, passphrase: Secret): Promise<Vault> {
    const root = randomBytes(32);
    const data = randomBytes(32);
    const id = randomUUID();
    const row: VaultRow = {
      id,
      createdAt: new Date().toISOString(),
      dataKeyGeneration: 1,
      dataKeyCiphertext: seal(root, data, associatedData(id, 'data-key', 1)),
    };
    const vault = new Vault(store, row);
    const slot = await vault.#wrapForSlot(root, 'passphrase', operator, defaultScrypt(), passphrase.bytes());
    await store.transaction(async (tx) => {
      await tx.createVault(row);
      await tx.addSlot({ kind: 'passphrase', name: operator, kdf: slot.kdf, rootKeyCiphertext: slot.wrapped, createdAt: row.createdAt, createdBy: operator });
    });
    vault.#root = root;
    vault.#data = data;
    vault.#slot = { kind: 'passphrase', name: operator };
    return vault;
  }

  get unlocked(): boolean {
    return this.#data !== undefined;
  }

  /** The slot this session unlocked with (its operator or key file). */
  get unlockedWith(): { kind: SlotKind; name: string } | undefined {
    return this.#slot;
  }

  async #wrapForSlot(root: Buffer, kind: SlotKind, name: string, params: KdfParams, secret: Buffer): Promise<{ kdf: string; wrapped: Ciphertext }> {
    const kek = await deriveSlotKey(params, secret);
    try {
      return { kdf: JSON.stringify(params), wrapped: seal(kek, root, associatedData(this.id, 'slot', kind, name)) };
    } finally {
      kek.fill(0);
    }
  }

  async #openSlot(slot: SlotRow, secret: Buffer): Promise<Buffer | undefined> {
    const kek = await deriveSlotKey(parseKdf(slot.kdf), secret);
    try {
      return open(kek, slot.rootKeyCiphertext, associatedData(this.id, 'slot', slot.kind, slot.name));
    } finally {
      kek.fill(0);
    }
  }

  #useRoot(root: Buffer, slot: { kind: SlotKind; name: string }): void {
    const data = open(root, this.#row.dataKeyCiphertext, associatedData(this.id, 'data-key', this.#row.dataKeyGeneration));
    if (!data) {
      root.fill(0);
      throw new PasstoreError('integrity', 'the vault\'s data key does not decrypt: the vault record was altered');
    }
    this.lock();
    this.#root = root;
    this.#data = data;
    this.#slot = slot;
  }

  /**
   * Unlocks with an operator's passphrase. A wrong one is counted in the slot and
   * answered after a delay that doubles with each consecutive failure.
   */
  async unlockWithPassphrase(operator: string, passphrase: Secret, options: UnlockOptions = {}): Promise<void> {
    const slot = await this.#store.getSlot('passphrase', operator);
    if (!slot) throw new PasstoreError('bad-passphrase', `operator '${operator}' has no key slot in this vault`);
    const root = await this.#openSlot(slot, passphrase.bytes());
    if (!root) {
      const count = slot.failedAttempts + 1;
      await this.#store.setFailedAttempts(slot.id, count).catch(() => undefined);
      await sleep(failureDelay(count, options.failureDelayMs ?? 1000));
      throw new PasstoreError('bad-passphrase', `wrong passphrase for operator '${operator}'`);
    }
    await this.#refreshRow();
    this.#useRoot(root, { kind: 'passphrase', name: operator });
    if (slot.failedAttempts > 0) await this.#store.setFailedAttempts(slot.id, 0);
  }

  /** Unlocks with a key file, refusing one that group or others may read. */
  async unlockWithKeyfile(path: string): Promise<void> {
    const bytes = readKeyfile(path);
    try {
      const slot = await this.#store.getSlot('keyfile', path);
      if (!slot) throw new PasstoreError('bad-passphrase', `key file ${path} has no key slot in this vault`);
      const root = await this.#openSlot(slot, bytes);
      if (!root) throw new PasstoreError('bad-passphrase', `key file ${path} does not open this vault`);
      await this.#refreshRow();
      this.#useRoot(root, { kind: 'keyfile', name: path });
    } finally {
      bytes.fill(0);
    }
  }

  /**
   * Follows a rekey made by another session: when the stored data key generation moved
   * on, the new data key is opened with the root key this session holds. Called before
   * each command and inside each transaction that writes a secret.
   */
  async refresh(store: Store = this.#store): Promise<void> {
    const row = await store.getVault();
    if (!row || row.dataKeyGeneration === this.#row.dataKeyGeneration) return;
    if (!this.#root) {
      this.#row = row;
      return;
    }
    const data = open(this.#root, row.dataKeyCiphertext, associatedData(this.id, 'data-key', row.dataKeyGeneration));
    if (!data) throw new PasstoreError('integrity', 'the vault\'s new data key does not decrypt: the vault record was altered');
    this.#data?.fill(0);
    this.#data = data;
    this.#row = row;
  }

  /** A copy of the root key, for sealing a backup (the caller wipes it). */
  rootKeyCopy(): Buffer {
    return Buffer.from(this.#requireRoot());
  }

  /**
   * Opens the root key from key slots read out of a backup's header (no store needed):
   * the operator's passphrase opens the backup as it opened the vault.
   */
  static async rootFromSlots(vaultId: string, slots: Array<Record<string, unknown>>, operator: string, passphrase: Secret): Promise<Buffer> {
    const slot = slots.find((s) => s.kind === 'passphrase' && s.name === operator);
    if (!slot) throw new PasstoreError('bad-passphrase', `operator '${operator}' has no key slot in this backup`);
    const wrapped = slot.root_key_ciphertext as { $b64?: string };
    const kek = await deriveSlotKey(parseKdf(String(slot.kdf)), passphrase.bytes());
    try {
      const root = open(kek, Ciphertext.fromStorage(Buffer.from(String(wrapped.$b64 ?? ''), 'base64')), associatedData(vaultId, 'slot', 'passphrase', operator));
      if (!root) throw new PasstoreError('bad-passphrase', `wrong passphrase for operator '${operator}'`);
      return root;
    } finally {
      kek.fill(0);
    }
  }

  /** Checks a passphrase against an operator's slot without changing what is unlocked. */
  async checkPassphrase(operator: string, passphrase: Secret): Promise<boolean> {
    const slot = await this.#store.getSlot('passphrase', operator);
    if (!slot) return false;
    const root = await this.#openSlot(slot, passphrase.bytes());
    root?.fill(0);
    return root !== undefined;
  }

  async #refreshRow(): Promise<void> {
    const row = await this.#store.getVault();
    if (!row) throw new PasstoreError('integrity', 'the vault record is gone');
    this.#row = row;
  }

  /** Wipes the keys from memory. */
  lock(): void {
    this.#root?.fill(0);
    this.#data?.fill(0);
    this.#auditKey?.fill(0);
    this.#root = undefined;
    this.#data = undefined;
    this.#auditKey = undefined;
    this.#slot = undefined;
  }

  #requireData(): Buffer {
    if (!this.#data) throw new PasstoreError('locked', 'the vault is locked');
    return this.#data;
  }

  #requireRoot(): Buffer {
    if (!this.#root) throw new PasstoreError('locked', 'the vault is locked');
    return this.#root;
  }

  /** The key that seals audit records (derived from the root key; stable across rekey). */
  auditKey(): Buffer | undefined {
    if (!this.#root) return undefined;
    this.#auditKey ??= Buffer.from(hkdfSync('sha256', this.#root, Buffer.from(this.id), 'passtore audit', 32));
    return this.#auditKey;
  }

  /** Encrypts a password for the row it will be stored in. Only ciphertext leaves. */
  sealPassword(id: PasswordIdentity, secret: Secret): Ciphertext {
    return seal(this.#requireData(), secret.bytes(), passwordAd(this.id, id));
  }

  /**
   * Decrypts a stored password. A ciphertext that was altered or moved from another row
   * gives an integrity error naming the entry, never garbage.
   */
  openPassword(row: EntryRow | HistoryRow): Secret {
    if (!row.secretCiphertext) throw new PasstoreError('not-found', `${formatSpec(row)} has no password set`);
    const plain = open(this.#requireData(), row.secretCiphertext, passwordAd(this.id, row));
    if (!plain) {
      throw new PasstoreError('integrity', `integrity error: the stored password of ${formatSpec(row)} (version ${row.version}) fails authentication; it was altered or moved`);
    }
    return Secret.fromBytes(plain);
  }

  /** Decrypts the pending password of an entry (a change on its host under way). */
  openPending(row: EntryRow): Secret {
    if (!row.pendingCiphertext || row.pendingVersion === null) throw new PasstoreError('not-found', `${formatSpec(row)} has no pending password`);
    const plain = open(this.#requireData(), row.pendingCiphertext, passwordAd(this.id, { ...row, version: row.pendingVersion }));
    if (!plain) throw new PasstoreError('integrity', `integrity error: the pending password of ${formatSpec(row)} fails authentication`);
    return Secret.fromBytes(plain);
  }

  /** Encrypts a host's private key (PKCS#8 DER), bound to the host and its public key. */
  sealKey(fqdn: string, spkiSha256: string, pkcs8: Buffer): Ciphertext {
    return seal(this.#requireData(), pkcs8, keyAd(this.id, fqdn, spkiSha256));
  }

  /** Decrypts a stored private key to PKCS#8 DER (the caller wipes it). */
  openKey(row: KeyRow): Buffer {
    const plain = open(this.#requireData(), row.keyCiphertext, keyAd(this.id, row.fqdn, row.spkiSha256));
    if (!plain) throw new PasstoreError('integrity', `integrity error: the stored private key ${row.spkiSha256.slice(0, 16)} of ${row.fqdn} fails authentication; it was altered or moved`);
    return plain;
  }

  /** Encrypts a deploy key's private half (PKCS#8 DER), bound to its fingerprint. */
  sealSshKey(fingerprint: string, pkcs8: Buffer): Ciphertext {
    return seal(this.#requireData(), pkcs8, sshKeyAd(this.id, fingerprint));
  }

  /** Decrypts a deploy key to PKCS#8 DER (the caller wipes it). */
  openSshKey(row: SshKeyRow): Buffer {
    const plain = open(this.#requireData(), row.keyCiphertext, sshKeyAd(this.id, row.fingerprint));
    if (!plain) throw new PasstoreError('integrity', `integrity error: the stored deploy key ${row.fingerprint} fails authentication; it was altered or moved`);
    return plain;
  }

  private openKeyWith(data: Buffer, row: KeyRow): Buffer {
    const plain = open(data, row.keyCiphertext, keyAd(this.id, row.fqdn, row.spkiSha256));
    if (!plain) throw new PasstoreError('integrity', `integrity error: the private key ${row.spkiSha256.slice(0, 16)} of ${row.fqdn} fails authentication; rekey stopped, nothing changed`);
    return plain;
  }

  /** Adds a passphrase slot for an operator (inside the caller's transaction). */
  async addPassphraseSlot(tx: Store, operator: string, passphrase: Secret, by: string): Promise<void> {
    const { kdf, wrapped } = await this.#wrapForSlot(this.#requireRoot(), 'passphrase', operator, defaultScrypt(), passphrase.bytes());
    await tx.addSlot({ kind: 'passphrase', name: operator, kdf, rootKeyCiphertext: wrapped, createdAt: new Date().toISOString(), createdBy: by });
  }

  /** Rewraps an operator's slot under a new passphrase; nothing else is rewritten. */
  async changePassphrase(tx: Store, operator: string, passphrase: Secret): Promise<void> {
    const slot = await tx.getSlot('passphrase', operator);
    if (!slot) throw new PasstoreError('not-found', `operator '${operator}' has no key slot`);
    const { kdf, wrapped } = await this.#wrapForSlot(this.#requireRoot(), 'passphrase', operator, defaultScrypt(), passphrase.bytes());
    await tx.rewrapSlot(slot.id, kdf, wrapped);
  }

  /** Makes a key file's content and a slot for it (the caller writes the file first). */
  async addKeyfileSlot(tx: Store, path: string, by: string): Promise<Buffer> {
    const key = randomBytes(32);
    const { kdf, wrapped } = await this.#wrapForSlot(this.#requireRoot(), 'keyfile', path, newHkdf(), key);
    await tx.addSlot({ kind: 'keyfile', name: path, kdf, rootKeyCiphertext: wrapped, createdAt: new Date().toISOString(), createdBy: by });
    const content = Buffer.from(`${KEYFILE_HEADER}\n${key.toString('base64')}\n`);
    key.fill(0);
    return content;
  }

  /**
   * Replaces the data key and re-encrypts every secret with it, in one transaction: a
   * crash leaves either the old key and old ciphertexts, or the new key and new ones.
   * Returns how many secrets were re-encrypted.
   */
  async rekey(inTransaction?: (tx: Store, count: number) => Promise<void>): Promise<number> {
    const root = this.#requireRoot();
    const oldData = this.#requireData();
    const newData = randomBytes(32);
    let count = 0;
    const generation = await this.#store.transaction(async (tx) => {
      const current = await tx.getVault();
      if (!current || current.dataKeyGeneration !== this.#row.dataKeyGeneration) {
        throw new PasstoreError('storage', 'the vault was rekeyed by another session; unlock again');
      }
      const { entries, history, keys, sshKeys = [] } = await tx.allSecrets();
      for (const key of sshKeys) {
        const plain = open(oldData, key.keyCiphertext, sshKeyAd(this.id, key.fingerprint));
        if (!plain) throw new PasstoreError('integrity', `integrity error: the deploy key ${key.fingerprint} fails authentication; rekey stopped, nothing changed`);
        await tx.setSshKeyCiphertext(key.id, seal(newData, plain, sshKeyAd(this.id, key.fingerprint)));
        plain.fill(0);
        count++;
      }
      for (const key of keys) {
        const plain = this.openKeyWith(oldData, key);
        await tx.setKeyCiphertext(key.id, seal(newData, plain, keyAd(this.id, key.fqdn, key.spkiSha256)));
        plain.fill(0);
        count++;
      }
      for (const e of entries) {
        if (!e.pendingCiphertext || e.pendingVersion === null) continue;
        const ad = passwordAd(this.id, { ...e, version: e.pendingVersion });
        const plain = open(oldData, e.pendingCiphertext, ad);
        if (!plain) throw new PasstoreError('integrity', `integrity error: the pending password of ${formatSpec(e)} fails authentication; rekey stopped, nothing changed`);
        await tx.setPending(e.id, seal(newData, plain, ad), e.pendingVersion, new Date().toISOString());
        plain.fill(0);
        count++;
      }
      for (const row of [...entries, ...history]) {
        if (!row.secretCiphertext) continue;
        const ad = passwordAd(this.id, row);
        const plain = open(oldData, row.secretCiphertext, ad);
        if (!plain) throw new PasstoreError('integrity', `integrity error: ${formatSpec(row)} (version ${row.version}) fails authentication; rekey stopped, nothing changed`);
        const fresh = seal(newData, plain, ad);
        plain.fill(0);
        if ('reason' in row) await tx.setHistoryCiphertext(row.id, fresh);
        else await tx.setEntryCiphertext(row.id, fresh);
        count++;
      }
      step('rekey-in-transaction');
      const gen = current.dataKeyGeneration + 1;
      await tx.setDataKey(gen, seal(root, newData, associatedData(this.id, 'data-key', gen)));
      await inTransaction?.(tx, count);
      return gen;
    });
    oldData.fill(0);
    this.#data = newData;
    this.#row = { ...this.#row, dataKeyGeneration: generation };
    return count;
  }
}

function keyAd(vaultId: string, fqdn: string, spkiSha256: string): Buffer {
  return associatedData(vaultId, 'private-key', fqdn, spkiSha256);
}

function sshKeyAd(vaultId: string, fingerprint: string): Buffer {
  return associatedData(vaultId, 'ssh-deploy-key', fingerprint);
}

function passwordAd(vaultId: string, id: PasswordIdentity): Buffer {
  return associatedData(vaultId, 'password', id.fqdn, id.user, id.service, id.version);
}

/** Reads a key file: it must be private to its owner and in passtore's format. */
export function readKeyfile(path: string): Buffer {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PasstoreError('locked', `key file ${path}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  if ((mode & 0o077) !== 0) {
    throw new PasstoreError('locked', `key file ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 400 it`);
  }
  const [header, body] = text.split('\n');
  const key = body ? Buffer.from(body, 'base64') : Buffer.alloc(0);
  if (header !== KEYFILE_HEADER || key.length !== 32) throw new PasstoreError('locked', `key file ${path} is not a passtore key file`);
  return key;
}
