/**
 * The vault: the security barrier between plaintext and storage.
 *
 * Key hierarchy: each key slot (one passphrase per operator, key files for automation)
 * holds the same random root key (keyring.ts); subkeys of the root key wrap the data key
 * and the audit key. The data key encrypts every secret. Changing a passphrase rewraps
 * one slot; `rekey` replaces the root key and the data key, seals the new root key to
 * every remaining slot and re-encrypts every secret, in one transaction.
 * Only this module turns a Secret into Ciphertext and back.
 */
import { step } from '../faults.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PasstoreError } from '../errors.js';
import { formatSpec } from '../names.js';
import { Secret } from '../secret.js';
import type { AccountKeyRow, EntryRow, HistoryRow, KeyRow, SlotKind, SlotRow, SshKeyRow, Store, VaultRow } from '../storage/store.js';
import { associatedData, open, seal } from './aead.js';
import { Ciphertext } from './ciphertext.js';
import { keyfileContent, readKeyfile } from './keyfile.js';
import { checkNewSlotCost, defaultScrypt, newHkdf, parseKdf, type KdfParams } from './kdf.js';
import { advanceSummary, tracking } from './summary.js';
import { dataKeyWrapKey, legacyAuditKey, makeKeyring, makeSlot, openAuditKey, openSlot, parseKeyring, sealRootToSlot, slotIsAuthentic, slotSeal, type Keyring } from './keyring.js';

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
  /** Told the delay before it starts, so the display can say how long the wait is. */
  onDelay?: (ms: number) => void;
}

/** The delay after the `count`-th consecutive wrong passphrase. */
export function failureDelay(count: number, baseMs: number): number {
  if (count <= 0) return 0;
  return Math.min(baseMs * 2 ** (count - 1), 30_000);
}

/**
 * The write transaction a seal runs in: which vault opened it and the data key generation
 * it checked inside it. Kept per asynchronous flow, so two commands or jobs running at
 * once in one process never borrow each other's transaction.
 */
const sealing = new AsyncLocalStorage<{ vault: Vault; generation: number }>();

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
    const audit = randomBytes(32);
    const id = randomUUID();
    const keyring = makeKeyring(root, id, 1, audit, null);
    audit.fill(0);
    const wrap = dataKeyWrapKey(root, id, keyring);
    const row: VaultRow = {
      id,
      createdAt: new Date().toISOString(),
      dataKeyGeneration: 1,
      dataKeyCiphertext: seal(wrap, data, associatedData(id, 'data-key', 1)),
      keyring: JSON.stringify(keyring),
    };
    wrap.fill(0);
    const vault = new Vault(store, row);
    vault.#root = root;
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

  /** Makes a slot (format 2, keyring.ts) holding `root` for a passphrase or key file. */
  async #wrapForSlot(root: Buffer, kind: SlotKind, name: string, params: KdfParams, secret: Buffer): Promise<{ kdf: string; wrapped: Ciphertext }> {
    checkNewSlotCost(params);
    return makeSlot(root, this.#rootGeneration(), this.id, kind, name, params, secret);
  }

  /** The root key's generation (1 until the first rekey that replaced it). */
  #rootGeneration(): number {
    return parseKeyring(this.#row.keyring)?.rootGeneration ?? 1;
  }

  /**
   * Opens a slot's root key. A slot of the old format (1) that opens is moved to format 2
   * at once, with its parameters unchanged, so a later rekey can seal to it.
   */
  async #openSlot(slot: SlotRow, secret: Buffer): Promise<Buffer | undefined> {
    const opened = await openSlot(this.id, slot, secret);
    if (!opened) return undefined;
    if (opened.legacy) {
      const params = parseKdf(slot.kdf);
      const { kdf, wrapped } = await makeSlot(opened.root, this.#rootGeneration(), this.id, slot.kind, slot.name, params, secret);
      await this.#store.rewrapSlot(slot.id, kdf, wrapped);
    }
    return opened.root;
  }

  #useRoot(root: Buffer, slot: { kind: SlotKind; name: string }): void {
    const wrap = dataKeyWrapKey(root, this.id, parseKeyring(this.#row.keyring));
    const data = open(wrap, this.#row.dataKeyCiphertext, associatedData(this.id, 'data-key', this.#row.dataKeyGeneration));
    wrap.fill(0);
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
  async unlockWithPassphrase(operator: string, passphrase: Secret, options: UnlockOptions = {}): Promise<number> {
    const slot = await this.#store.getSlot('passphrase', operator);
    if (!slot) throw new PasstoreError('bad-passphrase', `operator '${operator}' has no key slot in this vault`);
    await this.#refreshRow();
    const root = await this.#openSlot(slot, passphrase.bytes());
    if (!root) {
      const count = slot.failedAttempts + 1;
      await this.#store.setFailedAttempts(slot.id, count).catch(() => undefined);
      const delay = failureDelay(count, options.failureDelayMs ?? 1000);
      options.onDelay?.(delay);
      await sleep(delay);
      throw new PasstoreError('bad-passphrase', `wrong passphrase for operator '${operator}'`);
    }
    this.#useRoot(root, { kind: 'passphrase', name: operator });
    if (slot.failedAttempts > 0) await this.#store.setFailedAttempts(slot.id, 0);
    // The failures before this unlock, for the operator to be told (the count is reset).
    return slot.failedAttempts;
  }

  /** Unlocks with a key file, refusing one that group or others may read. */
  async unlockWithKeyfile(path: string): Promise<void> {
    const bytes = readKeyfile(path);
    try {
      const slot = await this.#store.getSlot('keyfile', path);
      if (!slot) throw new PasstoreError('bad-passphrase', `key file ${path} has no key slot in this vault`);
      await this.#refreshRow();
      const root = await this.#openSlot(slot, bytes);
      if (!root) throw new PasstoreError('bad-passphrase', `key file ${path} does not open this vault`);
      this.#useRoot(root, { kind: 'keyfile', name: path });
    } finally {
      bytes.fill(0);
    }
  }

  /** Opens the key file's slot again after another session's rekey; false when it no longer opens. */
  async #reopenKeyfile(store: Store, path: string): Promise<boolean> {
    let bytes: Buffer;
    try {
      bytes = readKeyfile(path);
    } catch {
      return false;
    }
    try {
      const slot = await store.getSlot('keyfile', path);
      const opened = slot ? await openSlot(this.id, slot, bytes) : undefined;
      if (!opened || opened.legacy) {
        opened?.root.fill(0);
        return false;
      }
      this.#useRoot(opened.root, { kind: 'keyfile', name: path });
      return true;
    } finally {
      bytes.fill(0);
    }
  }

  /**
   * Follows a rekey made by another session: when the stored data key generation moved
   * on, the new data key is opened with the root key this session holds. Called before
   * each command and inside each transaction that writes a secret.
   */
  async refresh(store: Store = this.#store, lock = false): Promise<void> {
    const row = await store.getVault(lock);
    if (!row || row.dataKeyGeneration === this.#row.dataKeyGeneration) return;
    if (!this.#root) {
      this.#row = row;
      return;
    }
    if ((parseKeyring(row.keyring)?.rootGeneration ?? 1) !== this.#rootGeneration()) {
      // Another session replaced the root key: this one's keys open nothing new. A key
      // file (passtore-cron) opens its slot again, now sealed to the new root key; an
      // operator must type the passphrase again.
      const slot = this.#slot;
      this.lock();
      this.#row = row;
      if (slot?.kind === 'keyfile' && (await this.#reopenKeyfile(store, slot.name))) return;
      throw new PasstoreError('locked', 'the vault was rekeyed in another session (new root key); unlock again');
    }
    const wrap = dataKeyWrapKey(this.#root, this.id, parseKeyring(row.keyring));
    const data = open(wrap, row.dataKeyCiphertext, associatedData(this.id, 'data-key', row.dataKeyGeneration));
    wrap.fill(0);
    if (!data) throw new PasstoreError('integrity', 'the vault\'s new data key does not decrypt: the vault record was altered');
    this.#data?.fill(0);
    this.#data = data;
    this.#row = row;
  }

  /**
   * Runs `fn` in one store transaction that may seal secrets. Inside it, before `fn` runs,
   * the vault row is read with a lock (MySQL: FOR UPDATE; SQLite transactions are serial)
   * and the data key brought up to the stored generation, so a rekey by another session or
   * machine either finished before (and this seals under the new key) or waits until this
   * commits (and re-encrypts what it wrote). A seal outside such a transaction, or after
   * the generation moved on, is refused: no caller can seal under a stale key.
   */
  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    this.#requireData();
    return this.#store.transaction(async (tx) => {
      await this.refresh(tx, true);
      const generation = this.#row.dataKeyGeneration;
      // Every entry written through `tx` is seen, and the summary of what is current
      // (summary.ts) moves with it in this transaction, under the vault row's lock.
      const tracked = tracking(tx);
      const result = await sealing.run({ vault: this, generation }, () => fn(tracked.store));
      const changes = await tracked.changes();
      step('summary-before-seal');
      if (changes) await advanceSummary(tx, this.auditKey()!, changes);
      return result;
    });
  }

  /** The data key for a seal: only inside this vault's transaction, at its generation. */
  #sealKey(): Buffer {
    const data = this.#requireData();
    const open = sealing.getStore();
    if (!open || open.vault !== this) throw new PasstoreError('policy', 'a secret may be sealed only inside vault.transaction (refused; nothing was stored)');
    if (open.generation !== this.#row.dataKeyGeneration) throw new PasstoreError('storage', 'the vault was rekeyed during this change; nothing was stored, try again');
    return data;
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
    const opened = await openSlot(vaultId, { kind: 'passphrase', name: operator, kdf: String(slot.kdf), rootKeyCiphertext: Ciphertext.fromStorage(Buffer.from(String(wrapped.$b64 ?? ''), 'base64')) }, passphrase.bytes());
    if (!opened) throw new PasstoreError('bad-passphrase', `wrong passphrase for operator '${operator}'`);
    return opened.root;
  }

  /** Checks a passphrase against an operator's slot without changing what is unlocked. */
  async checkPassphrase(operator: string, passphrase: Secret): Promise<boolean> {
    const slot = await this.#store.getSlot('passphrase', operator);
    if (!slot) return false;
    const opened = await openSlot(this.id, slot, passphrase.bytes());
    opened?.root.fill(0);
    return opened !== undefined;
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

  /**
   * The key that seals audit records: random, kept in the keyring under the root key's
   * audit subkey and carried over by each rekey, so records sealed before a rekey still
   * verify (a vault without a keyring derives it from the root key, as before).
   */
  auditKey(): Buffer | undefined {
    if (!this.#root) return undefined;
    const keyring = parseKeyring(this.#row.keyring);
    this.#auditKey ??= keyring ? openAuditKey(this.#root, this.id, keyring) : legacyAuditKey(this.#root, this.id);
    return this.#auditKey;
  }

  /** The root key's generation: 1, plus one for each rekey since schema 8. */
  get rootGeneration(): number {
    return this.#rootGeneration();
  }

  /** When the root key was last replaced by rekey, or null. */
  get rekeyedAt(): string | null {
    return parseKeyring(this.#row.keyring)?.rekeyedAt ?? null;
  }

  /** Encrypts a password for the row it will be stored in. Only ciphertext leaves. */
  sealPassword(id: PasswordIdentity, secret: Secret): Ciphertext {
    return seal(this.#sealKey(), secret.bytes(), passwordAd(this.id, id));
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
    return seal(this.#sealKey(), pkcs8, keyAd(this.id, fqdn, spkiSha256));
  }

  /** Encrypts the key of an account at a CA (PEM), bound to its name. */
  sealAccountKey(name: string, pem: Buffer): Ciphertext {
    return seal(this.#sealKey(), pem, accountKeyAd(this.id, name));
  }

  /** Decrypts the key of an account at a CA (the caller wipes it). */
  openAccountKey(row: AccountKeyRow): Buffer {
    const plain = open(this.#requireData(), row.keyCiphertext, accountKeyAd(this.id, row.name));
    if (!plain) throw new PasstoreError('integrity', `integrity error: the stored account key '${row.name}' fails authentication; it was altered or moved`);
    return plain;
  }

  /** Decrypts a stored private key to PKCS#8 DER (the caller wipes it). */
  openKey(row: KeyRow): Buffer {
    const plain = open(this.#requireData(), row.keyCiphertext, keyAd(this.id, row.fqdn, row.spkiSha256));
    if (!plain) throw new PasstoreError('integrity', `integrity error: the stored private key ${row.spkiSha256.slice(0, 16)} of ${row.fqdn} fails authentication; it was altered or moved`);
    return plain;
  }

  /** Encrypts a deploy key's private half (PKCS#8 DER), bound to its fingerprint. */
  sealSshKey(fingerprint: string, pkcs8: Buffer): Ciphertext {
    return seal(this.#sealKey(), pkcs8, sshKeyAd(this.id, fingerprint));
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
    const content = keyfileContent(key);
    key.fill(0);
    return content;
  }

  /**
   * Replaces the root key and the data key, in one transaction: every secret is
   * re-encrypted under the new data key, the new data key is wrapped under the new root
   * key, the new root key is sealed to every remaining key slot (key files included: the
   * slots' public keys need no passphrase), and the audit key is carried over under the
   * new root key. A crash leaves either the old keys with the old ciphertexts, or the new
   * ones. Whoever kept an earlier copy of a slot removed before this opens nothing
   * written afterwards. Returns how many secrets were re-encrypted.
   *
   * Refused while a slot is of the old format (its operator must unlock once first) or
   * is not sealed by the current root key (planted in the database).
   */
  async rekey(inTransaction?: (tx: Store, count: number) => Promise<void>): Promise<number> {
    const oldRoot = this.#requireRoot();
    const oldData = this.#requireData();
    const auditKey = Buffer.from(this.auditKey()!);
    const newRoot = randomBytes(32);
    const newData = randomBytes(32);
    let count = 0;
    let newRow: VaultRow | undefined;
    try {
      await this.#store.transaction(async (tx) => {
        // A locking read: a vault.transaction of another session waits for this one.
        const current = await tx.getVault(true);
        if (!current || current.dataKeyGeneration !== this.#row.dataKeyGeneration) {
          throw new PasstoreError('storage', 'the vault was rekeyed by another session; unlock again');
        }
        const slots = await tx.listSlots();
        for (const slot of slots) {
          const who = slot.kind === 'passphrase' ? `operator '${slot.name}'` : `key file ${slot.name}`;
          if (!slotSeal(slot.kdf)) throw new PasstoreError('policy', `the key slot of ${who} is of the old format: unlock with it once (or remove it) before rekey; nothing changed`);
          if (!slotIsAuthentic(oldRoot, this.id, slot)) throw new PasstoreError('integrity', `integrity error: the key slot of ${who} is not sealed by this vault's root key (planted or altered); rekey stopped, nothing changed`);
        }
        const { entries, history, keys, sshKeys = [] } = await tx.allSecrets();
        step('rekey-secrets-read');
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
        for (const a of await tx.listAccountKeys()) {
          const plain = open(oldData, a.keyCiphertext, accountKeyAd(this.id, a.name));
          if (!plain) throw new PasstoreError('integrity', `integrity error: the account key '${a.name}' fails authentication; rekey stopped, nothing changed`);
          await tx.setAccountKeyCiphertext(a.name, seal(newData, plain, accountKeyAd(this.id, a.name)));
          plain.fill(0);
          count++;
        }
        step('rekey-in-transaction');
        const gen = current.dataKeyGeneration + 1;
        const rootGeneration = (parseKeyring(current.keyring)?.rootGeneration ?? 1) + 1;
        const keyring: Keyring = makeKeyring(newRoot, this.id, rootGeneration, auditKey, new Date().toISOString());
        const wrap = dataKeyWrapKey(newRoot, this.id, keyring);
        const dataKeyCiphertext = seal(wrap, newData, associatedData(this.id, 'data-key', gen));
        wrap.fill(0);
        await tx.setDataKey(gen, dataKeyCiphertext);
        step('rekey-data-key-set');
        await tx.setKeyring(JSON.stringify(keyring));
        for (const slot of slots) {
          const old = slotSeal(slot.kdf)!;
          const { seal: fresh, wrapped } = sealRootToSlot(newRoot, rootGeneration, this.id, slot.kind, slot.name, old.pub, old.priv);
          await tx.rewrapSlot(slot.id, JSON.stringify({ ...(JSON.parse(slot.kdf) as object), seal: fresh }), wrapped);
          step('rekey-slot-rewrapped');
        }
        // The summary of what is current seals the new generations (its key, from the
        // audit key, is carried over).
        await advanceSummary(tx, auditKey);
        await inTransaction?.(tx, count);
        step('rekey-before-commit');
        newRow = { ...current, dataKeyGeneration: gen, dataKeyCiphertext, keyring: JSON.stringify(keyring) };
      });
    } catch (e) {
      newRoot.fill(0);
      newData.fill(0);
      auditKey.fill(0);
      throw e;
    }
    step('rekey-committed');
    oldData.fill(0);
    oldRoot.fill(0);
    auditKey.fill(0);
    this.#root = newRoot;
    this.#data = newData;
    this.#row = newRow!;
    return count;
  }

}

function accountKeyAd(vaultId: string, name: string): Buffer {
  return associatedData(vaultId, 'account-key', name);
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

/** Reads a key file (see keyfile.ts). */
export { readKeyfile };
