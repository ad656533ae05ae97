/**
 * The vault's key hierarchy below the root key, and the key slots that hold it.
 *
 * Key separation: the root key is never used as a key itself. HKDF-SHA256 (salt: the
 * vault id) derives one subkey per purpose: wrapping the data key, wrapping the audit
 * key, authenticating the key slots, sealing backups (backup.ts).
 *
 * Key slots (format 2) hold an X25519 key pair: the private key is wrapped under the
 * slot's own key (scrypt of the passphrase, or HKDF of the key file), and the root key is
 * sealed to the public key (ephemeral X25519, HKDF, AES-256-GCM). So `rekey` can seal a
 * new root key to every remaining slot without anyone's passphrase or key file, while a
 * removed operator's old slot opens only the root key it held. Each slot carries an
 * HMAC under the root key's slot subkey over its kind, name, public key and the root
 * key's generation: a slot planted in the database by someone without the root key is
 * never given the next root key.
 *
 * Slots of format 1 (before schema 8) wrap the root key directly under the slot key;
 * they still open, and are moved to format 2 the next time they are opened.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { hkdf32 } from './hkdf.js';
import { PasstoreError } from '../errors.js';
import type { SlotKind } from '../storage/store.js';
import { associatedData, open, seal } from './aead.js';
import { Ciphertext } from './ciphertext.js';
import { deriveSlotKey, parseKdf } from './kdf.js';

/** The purposes the root key derives a subkey for. */
export type Purpose = 'data-key wrap' | 'audit-key wrap' | 'slot mac' | 'backup';

/** A 256-bit subkey of `root` for one purpose (the caller wipes it). */
export function subkey(root: Buffer, vaultId: string, purpose: Purpose): Buffer {
  // 'backup' keeps the info string backups were always sealed with.
  const info = purpose === 'backup' ? 'passtore backup' : `passtore ${purpose}`;
  return hkdf32(root, Buffer.from(vaultId), info);
}

/** The audit key of a vault without a keyring (derived from the root key, as before schema 8). */
export function legacyAuditKey(root: Buffer, vaultId: string): Buffer {
  return hkdf32(root, Buffer.from(vaultId), 'passtore audit');
}

/** The vault row's keyring column. */
export interface Keyring {
  v: 2;
  /** Bumped each time rekey replaces the root key. */
  rootGeneration: number;
  /** The audit key, sealed under the root key's audit-key subkey (base64). */
  auditKey: string;
  /** When the root key was last replaced (ISO time), or null. */
  rekeyedAt: string | null;
}

export function parseKeyring(text: string | null | undefined): Keyring | undefined {
  if (!text) return undefined;
  try {
    const k = JSON.parse(text) as Keyring;
    if (k.v === 2 && Number.isInteger(k.rootGeneration) && typeof k.auditKey === 'string') return k;
  } catch {
    /* reported below */
  }
  throw new PasstoreError('integrity', 'the vault\'s keyring is unreadable: the vault record was altered');
}

const auditKeyAd = (vaultId: string, rootGeneration: number) => associatedData(vaultId, 'audit-key', rootGeneration);

/** Builds a keyring holding `auditKey` sealed under `root`. */
export function makeKeyring(root: Buffer, vaultId: string, rootGeneration: number, auditKey: Buffer, rekeyedAt: string | null): Keyring {
  const wrap = subkey(root, vaultId, 'audit-key wrap');
  try {
    return { v: 2, rootGeneration, auditKey: seal(wrap, auditKey, auditKeyAd(vaultId, rootGeneration)).bytes.toString('base64'), rekeyedAt };
  } finally {
    wrap.fill(0);
  }
}

/** Opens the audit key of a keyring (the caller wipes it). */
export function openAuditKey(root: Buffer, vaultId: string, keyring: Keyring): Buffer {
  const wrap = subkey(root, vaultId, 'audit-key wrap');
  try {
    const key = open(wrap, Ciphertext.fromStorage(Buffer.from(keyring.auditKey, 'base64')), auditKeyAd(vaultId, keyring.rootGeneration));
    if (!key) throw new PasstoreError('integrity', 'the vault\'s audit key does not decrypt: the vault record was altered');
    return key;
  } finally {
    wrap.fill(0);
  }
}

/** The key that wraps the data key: a subkey with a keyring, the root key itself without (before schema 8). */
export function dataKeyWrapKey(root: Buffer, vaultId: string, keyring: Keyring | undefined): Buffer {
  return keyring ? subkey(root, vaultId, 'data-key wrap') : Buffer.from(root);
}

/** What a format-2 slot stores beside its key derivation parameters (in the kdf column). */
export interface SlotSeal {
  /** The slot's X25519 public key (raw, base64). */
  pub: string;
  /** The slot's X25519 private key (PKCS#8 DER), sealed under the slot key (base64). */
  priv: string;
  /** The ephemeral X25519 public key the root key was sealed with (raw, base64). */
  eph: string;
  /** The root key generation it holds. */
  gen: number;
  /** HMAC-SHA256 under the root key's slot subkey (hex). */
  mac: string;
}

interface SlotLike {
  kind: SlotKind;
  name: string;
  kdf: string;
  rootKeyCiphertext: Ciphertext;
}

/** The seal of a format-2 slot, or undefined for a format-1 one. */
export function slotSeal(kdfText: string): SlotSeal | undefined {
  try {
    const s = (JSON.parse(kdfText) as { seal?: SlotSeal }).seal;
    if (!s) return undefined;
    if (typeof s.pub === 'string' && typeof s.priv === 'string' && typeof s.eph === 'string' && Number.isInteger(s.gen) && typeof s.mac === 'string') return s;
  } catch {
    /* below */
  }
  throw new PasstoreError('integrity', 'a key slot has unreadable parameters');
}

const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const rawPublic = (k: KeyObject) => k.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length);
const publicFromRaw = (raw: Buffer) => createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });

/** The key that seals a root key to a slot's public key: HKDF of the X25519 shared secret. */
function sealingKey(shared: Buffer, eph: Buffer, pub: Buffer): Buffer {
  const key = hkdf32(shared, Buffer.concat([eph, pub]), 'passtore slot wrap');
  shared.fill(0);
  return key;
}

const rootAd = (vaultId: string, kind: SlotKind, name: string, gen: number) => associatedData(vaultId, 'slot', kind, name, gen);
const privAd = (vaultId: string, kind: SlotKind, name: string) => associatedData(vaultId, 'slot-key', kind, name);

function computeMac(root: Buffer, vaultId: string, kind: SlotKind, name: string, pub: string, gen: number): string {
  const key = subkey(root, vaultId, 'slot mac');
  try {
    return createHmac('sha256', key).update(JSON.stringify([kind, name, pub, gen])).digest('hex');
  } finally {
    key.fill(0);
  }
}

/** Seals `root` (of generation `gen`) to the public key of a slot; returns the new seal fields and ciphertext. */
export function sealRootToSlot(root: Buffer, gen: number, vaultId: string, kind: SlotKind, name: string, pubB64: string, privB64: string): { seal: SlotSeal; wrapped: Ciphertext } {
  const pub = Buffer.from(pubB64, 'base64');
  const ephemeral = generateKeyPairSync('x25519');
  const eph = rawPublic(ephemeral.publicKey);
  const key = sealingKey(diffieHellman({ privateKey: ephemeral.privateKey, publicKey: publicFromRaw(pub) }), eph, pub);
  try {
    const wrapped = seal(key, root, rootAd(vaultId, kind, name, gen));
    return { seal: { pub: pubB64, priv: privB64, eph: eph.toString('base64'), gen, mac: computeMac(root, vaultId, kind, name, pubB64, gen) }, wrapped };
  } finally {
    key.fill(0);
  }
}

/**
 * Makes a format-2 slot for `secret` (passphrase or key file bytes) holding `root`: a new
 * X25519 key pair, its private key wrapped under the slot key. Returns the kdf column's
 * text and the wrapped root key.
 */
export async function makeSlot(root: Buffer, gen: number, vaultId: string, kind: SlotKind, name: string, params: object & { alg: string }, secret: Buffer): Promise<{ kdf: string; wrapped: Ciphertext }> {
  const kek = await deriveSlotKey(parseKdf(JSON.stringify(params)), secret);
  const pair = generateKeyPairSync('x25519');
  const der = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    const priv = seal(kek, der, privAd(vaultId, kind, name)).bytes.toString('base64');
    const { seal: s, wrapped } = sealRootToSlot(root, gen, vaultId, kind, name, rawPublic(pair.publicKey).toString('base64'), priv);
    return { kdf: JSON.stringify({ ...params, seal: s }), wrapped };
  } finally {
    kek.fill(0);
    der.fill(0);
  }
}

/** True when the slot's HMAC shows it was made or rewrapped by a holder of `root`. */
export function slotIsAuthentic(root: Buffer, vaultId: string, slot: { kind: SlotKind; name: string; kdf: string }): boolean {
  const s = slotSeal(slot.kdf);
  if (!s) return false;
  const want = Buffer.from(computeMac(root, vaultId, slot.kind, slot.name, s.pub, s.gen), 'hex');
  const got = Buffer.from(s.mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Opens a slot's root key with its passphrase or key file bytes; undefined when they are
 * wrong. `legacy` is true for a format-1 slot (the caller moves it to format 2).
 * A format-2 slot whose HMAC does not match the root key it gives is an integrity error.
 */
export async function openSlot(vaultId: string, slot: SlotLike, secret: Buffer): Promise<{ root: Buffer; legacy: boolean } | undefined> {
  const kek = await deriveSlotKey(parseKdf(slot.kdf), secret);
  try {
    const s = slotSeal(slot.kdf);
    if (!s) {
      const root = open(kek, slot.rootKeyCiphertext, associatedData(vaultId, 'slot', slot.kind, slot.name));
      return root ? { root, legacy: true } : undefined;
    }
    const der = open(kek, Ciphertext.fromStorage(Buffer.from(s.priv, 'base64')), privAd(vaultId, slot.kind, slot.name));
    if (!der) return undefined;
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
    const eph = Buffer.from(s.eph, 'base64');
    const pub = Buffer.from(s.pub, 'base64');
    const key = sealingKey(diffieHellman({ privateKey, publicKey: publicFromRaw(eph) }), eph, pub);
    const root = open(key, slot.rootKeyCiphertext, rootAd(vaultId, slot.kind, slot.name, s.gen));
    key.fill(0);
    if (!root) throw new PasstoreError('integrity', `the ${slot.kind} slot '${slot.name}' opens but its root key does not: the slot was altered`);
    if (!slotIsAuthentic(root, vaultId, slot)) {
      root.fill(0);
      throw new PasstoreError('integrity', `the ${slot.kind} slot '${slot.name}' is not sealed by this vault's root key: it was altered or planted`);
    }
    return { root, legacy: false };
  } finally {
    kek.fill(0);
  }
}
