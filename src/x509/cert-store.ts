/**
 * The rules for keeping keys and certificates (SPEC section 6): a certificate is stored
 * only if its public key matches a stored private key (and the key checks against it),
 * only if it names that key's host, and not when expired unless forced. Storing a new
 * pair makes the previous pair history; nothing is ever deleted.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import type { HostRow, KeyRow, KeyState, Store } from '../storage/store.js';
import type { Vault } from '../vault/vault.js';
import { namesHost, type CertFacts } from './certificate.js';
import type { ChainPool, IssuingChain } from './chain.js';
import { loadPkcs8, type KeyFacts } from './keys.js';

const now = () => new Date().toISOString();

/** Seals and stores a host's private key; returns its row id. */
export async function storeKey(
  tx: Store,
  vault: Vault,
  host: HostRow,
  pkcs8: Buffer,
  facts: KeyFacts,
  options: { state: KeyState; origin: KeyRow['origin']; by: string },
): Promise<number> {
  return tx.insertKey({
    hostId: host.id,
    spkiSha256: facts.spkiSha256,
    keyType: facts.type,
    state: options.state,
    origin: options.origin,
    keyCiphertext: vault.sealKey(host.fqdn, facts.spkiSha256, pkcs8),
    createdAt: now(),
    createdBy: options.by,
  });
}

export interface AcceptOptions {
  by: string;
  /** Store an expired certificate anyway. */
  force?: boolean;
  /** The private key, when the caller already holds it; else it is decrypted. */
  key?: KeyObject;
  /** The caller already checked the private key against this certificate (importcert's pairing). */
  keyChecked?: boolean;
  /** The host the caller already found the certificate names (importcert's pairing). */
  namesChecked?: string;
  /** Refuse unless the certificate's key belongs to this host. */
  expectHost?: string;
  /** The host was added in this transaction: it has no earlier certificate, key or request. */
  freshHost?: boolean;
  /**
   * The CA certificates delivered with it: those that issue it (each link's signature
   * verified) are stored with it as its issuing chain, in the same row.
   */
  chain?: ChainPool;
}

export interface Accepted {
  fqdn: string;
  certId: number;
  /** Whether a previous certificate became history. */
  replaced: boolean;
  /** The issuing chain stored with it (no subjects: none). */
  chain: IssuingChain;
}

/**
 * Checks a certificate against the vault and stores it as its host's current one.
 * @throws PasstoreError naming why it was refused; nothing is stored then.
 */
export async function acceptCertificate(tx: Store, vault: Vault, certificate: X509Certificate | { readonly cert: X509Certificate }, facts: CertFacts, options: AcceptOptions): Promise<Accepted> {
  // A certificate importcert found is parsed again only if a check below needs it.
  const cert = () => ('cert' in certificate ? certificate.cert : certificate);
  const key = await tx.getKeyBySpki(facts.spkiSha256);
  if (!key) throw new PasstoreError('mismatch', `certificate ${facts.subject} matches no private key in the vault`);
  if (options.expectHost && key.fqdn !== options.expectHost) {
    throw new PasstoreError('mismatch', `certificate ${facts.subject} belongs to the key of ${key.fqdn}, not ${options.expectHost}`);
  }
  if (options.namesChecked !== key.fqdn && !namesHost(cert(), key.fqdn)) {
    throw new PasstoreError('mismatch', `certificate ${facts.subject} does not name ${key.fqdn}, the host its key belongs to`);
  }
  if (!options.keyChecked) checkKey(cert(), key, vault, options.key);
  if (Date.parse(facts.notAfter) <= Date.now() && !options.force) {
    throw new PasstoreError('policy', `certificate for ${key.fqdn} expired on ${facts.notAfter.slice(0, 10)}; refused (getcrt --force stores it anyway)`);
  }
  if (await tx.getCertificateByFingerprint(facts.fingerprintSha256)) {
    throw new PasstoreError('exists', `this certificate for ${key.fqdn} is already in the vault`);
  }
  let replaced = false;
  for (const c of options.freshHost ? [] : await tx.listCertificates(key.hostId)) {
    if (c.state === 'current') {
      await tx.setCertificateState(c.id, 'history');
      replaced = true;
    }
  }
  for (const k of options.freshHost ? [] : await tx.listKeys(key.hostId)) {
    if (k.state === 'current' && k.id !== key.id) await tx.setKeyState(k.id, 'history');
  }
  if (key.state !== 'current') await tx.setKeyState(key.id, 'current');
  const chain: IssuingChain = options.chain && options.chain.size > 0 ? options.chain.chainOf(cert, facts) : { pem: null, subjects: [] };
  const certId = await tx.insertCertificate({
    hostId: key.hostId,
    keyId: key.id,
    spkiSha256: facts.spkiSha256,
    fingerprintSha256: facts.fingerprintSha256,
    subject: facts.subject,
    issuer: facts.issuer,
    serial: facts.serial,
    sans: facts.sans.join(','),
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    pem: facts.pem,
    chainPem: chain.pem,
    state: 'current',
    storedAt: now(),
    storedBy: options.by,
    deployedAt: null,
  });
  for (const r of options.freshHost ? [] : await tx.listRequests(key.hostId)) {
    if (r.keyId === key.id && (r.state === 'created' || r.state === 'sent')) await tx.setRequestState(r.id, 'fulfilled', now());
  }
  return { fqdn: key.fqdn, certId, replaced, chain };
}

/** Verifies the private key against the certificate, not only the SPKI hashes. */
function checkKey(cert: X509Certificate, row: KeyRow, vault: Vault, held?: KeyObject): void {
  let key = held;
  let pkcs8: Buffer | undefined;
  try {
    if (!key) {
      pkcs8 = vault.openKey(row);
      key = loadPkcs8(pkcs8);
    }
    if (!cert.checkPrivateKey(key)) throw new PasstoreError('mismatch', `certificate for ${row.fqdn} does not match its private key`);
  } finally {
    pkcs8?.fill(0);
  }
}
