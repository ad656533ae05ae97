/**
 * Reads certificates and private keys out of a file's bytes: any number of PEM blocks
 * (certificates, PKCS#8, PKCS#1 and SEC1 keys, encrypted keys, PKCS#7 bundles), or one
 * DER object (a certificate, a key, an encrypted PKCS#8 key, a PKCS#7 bundle, a PKCS#12
 * file). This is the one reading path of importcert, getcrt, getkey and passtore-cron's
 * fetchers. Nothing here trusts a file name; every object is identified by what it is.
 * Every private key read is proven (proveKey) before it is returned.
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { parseCertificate, type CertFacts } from './certificate.js';
import { decryptPkcs8, isEncryptedPkcs8, isPkcs12, openPkcs12, pkcs7Certificates } from './containers.js';
import { keyFacts, loadPrivateKeyDer, proveKey, type KeyFacts } from './keys.js';

/**
 * Something that needs a passphrase: an encrypted PEM key (`pem`, its PEM text), an
 * encrypted PKCS#8 key in DER (`pkcs8`), or a PKCS#12 file (`pkcs12`).
 */
export interface Locked {
  format: 'pem' | 'pkcs8' | 'pkcs12';
  data: Buffer;
}

export type Found =
  | { kind: 'certificate'; cert: X509Certificate; facts: CertFacts }
  | { kind: 'key'; key: KeyObject; facts: KeyFacts }
  | { kind: 'locked'; locked: Locked };

export interface FileContents {
  objects: Found[];
  /** Why parts of the file could not be used (one entry per bad part). */
  problems: string[];
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const CERTIFICATE_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE']);
const PKCS7_LABELS = new Set(['PKCS7', 'PKCS #7 SIGNED DATA', 'CERTIFICATE CHAIN']);
const IGNORED = new Set(['EC PARAMETERS', 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST', 'PUBLIC KEY', 'X509 CRL']);

/** A key read: its facts, once the private half is proven to work. */
function provenKey(key: KeyObject, from?: { der: Buffer; type: 'pkcs8' | 'pkcs1' | 'sec1' }): { key: KeyObject; facts: KeyFacts } {
  const facts = keyFacts(key);
  proveKey(key, from);
  return { key, facts };
}

/** Decrypts an encrypted PEM key with a passphrase; refuses a wrong one clearly. */
export function decryptKey(pem: string, passphrase: Buffer): { key: KeyObject; facts: KeyFacts } {
  const der = /^-----BEGIN ENCRYPTED PRIVATE KEY-----/m.test(pem) ? pemBody(pem) : undefined;
  if (der) return provenKey(decryptPkcs8(der, passphrase));
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    throw new PasstoreError('bad-passphrase', 'wrong passphrase for the encrypted key, or the key is damaged');
  }
  return provenKey(key);
}

/**
 * Opens what a passphrase locks (null: try a PKCS#12 file without one) and returns what
 * it held, as if they had been separate files.
 * @throws PasstoreError('bad-passphrase') for a wrong passphrase; another PasstoreError naming
 * what is unsupported or damaged
 */
export function unlock(locked: Locked, passphrase: Buffer | null): FileContents {
  if (locked.format === 'pkcs12') {
    const { keys, certs } = openPkcs12(locked.data, passphrase === null ? null : passphrase.toString('utf8'));
    const objects: Found[] = [];
    const problems: string[] = [];
    for (const der of certs) addCertificate(der, objects, problems);
    for (const der of keys) {
      try {
        objects.push({ kind: 'key', ...keyFrom(der, 'pkcs8', true) });
      } catch (e) {
        problems.push(reasonOr(e, 'damaged private key in the PKCS#12 file'));
      }
    }
    if (objects.length === 0 && problems.length === 0) problems.push('PKCS#12 file with no certificate or key in it');
    return { objects, problems };
  }
  if (passphrase === null) throw new PasstoreError('bad-passphrase', 'the encrypted key needs its passphrase');
  const found = locked.format === 'pkcs8' ? provenKey(decryptPkcs8(locked.data, passphrase)) : decryptKey(locked.data.toString('latin1'), passphrase);
  return { objects: [{ kind: 'key', ...found }], problems: [] };
}

const DER_TYPE = { 'PRIVATE KEY': 'pkcs8', 'RSA PRIVATE KEY': 'pkcs1', 'EC PRIVATE KEY': 'sec1' } as const;

/** A private key from its DER (wiped afterwards when `wipe`), with its facts. */
function keyFrom(der: Buffer, type: 'pkcs8' | 'pkcs1' | 'sec1', wipe: boolean): { key: KeyObject; facts: KeyFacts } {
  try {
    return provenKey(loadPrivateKeyDer(der, type), { der, type });
  } finally {
    if (wipe) der.fill(0);
  }
}

/**
 * The DER inside an unencrypted PEM key block (base64 between the armour lines), or
 * undefined when the block carries headers or is not clean base64: OpenSSL's PEM
 * reader takes those.
 */
function pemBody(pem: string): Buffer | undefined {
  const body = pem.slice(pem.indexOf('\n') + 1, pem.lastIndexOf('-----END '));
  if (!/^[A-Za-z0-9+/=\r\n]+$/.test(body)) return undefined;
  return Buffer.from(body, 'base64');
}

/** The message of a refusal passtore made itself (a weak or damaged key), else `fallback`. */
function reasonOr(e: unknown, fallback: string): string {
  return e instanceof PasstoreError && (e.code === 'policy' || e.code === 'mismatch') ? e.message : fallback;
}

function addCertificate(data: string | Buffer, objects: Found[], problems: string[]): void {
  try {
    const { cert, facts } = parseCertificate(data);
    objects.push({ kind: 'certificate', cert, facts });
  } catch (e) {
    problems.push(reasonOr(e, 'damaged certificate block'));
  }
}

/** The certificates of a PKCS#7 bundle, each read as a certificate. */
function addPkcs7(der: Buffer, objects: Found[], problems: string[]): boolean {
  const certs = pkcs7Certificates(der);
  if (!certs) return false;
  if (certs.length === 0) problems.push('PKCS#7 bundle with no certificate in it');
  for (const c of certs) addCertificate(c, objects, problems);
  return true;
}

/** Every certificate and key in `data`, and the problems with the rest. */
export function readObjects(data: Buffer): FileContents {
  const objects: Found[] = [];
  const problems: string[] = [];
  if (data.length === 0) return { objects, problems: ['empty file'] };
  const text = data.toString('latin1');
  const blocks = [...text.matchAll(BLOCK)];
  if (blocks.length === 0) {
    if (text.includes('-----BEGIN ')) return { objects, problems: ['damaged PEM (no complete BEGIN/END block)'] };
    return readDer(data);
  }
  for (const [pem, label] of blocks) {
    if (IGNORED.has(label!)) continue;
    if (CERTIFICATE_LABELS.has(label!)) addCertificate(pem, objects, problems);
    else if (PKCS7_LABELS.has(label!)) {
      const der = pemBody(pem);
      if (!der) problems.push(`damaged ${label} block`);
      else if (!addPkcs7(der, objects, problems)) problems.push(`${label} block that is not a certificate bundle (PKCS#7 signed data): an encrypted message or other data, or damaged`);
    } else if (label === 'ENCRYPTED PRIVATE KEY' || (/PRIVATE KEY$/.test(label!) && /Proc-Type:\s*4,ENCRYPTED/.test(pem))) {
      objects.push({ kind: 'locked', locked: { format: 'pem', data: Buffer.from(pem, 'latin1') } });
    } else if (label === 'PRIVATE KEY' || label === 'RSA PRIVATE KEY' || label === 'EC PRIVATE KEY') {
      try {
        const der = pemBody(pem);
        if (der) objects.push({ kind: 'key', ...keyFrom(der, DER_TYPE[label], true) });
        else objects.push({ kind: 'key', ...provenKey(createPrivateKey({ key: pem, format: 'pem' })) });
      } catch (e) {
        problems.push(reasonOr(e, `damaged ${label} block`));
      }
    } else problems.push(`unsupported PEM block ${label}`);
  }
  if (objects.length === 0 && problems.length === 0) problems.push('no certificate or private key in it');
  return { objects, problems };
}

function readDer(data: Buffer): FileContents {
  try {
    const { cert, facts } = parseCertificate(data);
    return { objects: [{ kind: 'certificate', cert, facts }], problems: [] };
  } catch {
    // not a DER certificate; try the containers and the key encodings
  }
  const objects: Found[] = [];
  const problems: string[] = [];
  if (addPkcs7(data, objects, problems)) return { objects, problems };
  if (isPkcs12(data)) {
    const locked: Locked = { format: 'pkcs12', data: Buffer.from(data) };
    // A PKCS#12 file made without a password opens at once; else its passphrase is asked.
    try {
      return unlock(locked, null);
    } catch (e) {
      if (!(e instanceof PasstoreError) || e.code !== 'bad-passphrase') return { objects: [], problems: [reasonOr(e, 'damaged PKCS#12 file')] };
    }
    return { objects: [{ kind: 'locked', locked }], problems: [] };
  }
  if (isEncryptedPkcs8(data)) return { objects: [{ kind: 'locked', locked: { format: 'pkcs8', data: Buffer.from(data) } }], problems: [] };
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return { objects: [{ kind: 'key', ...keyFrom(data, type, false) }], problems: [] };
    } catch (e) {
      if (e instanceof PasstoreError) return { objects: [], problems: [e.message] };
    }
  }
  return { objects: [], problems: ['neither PEM nor a DER certificate, key, PKCS#7 bundle or PKCS#12 file'] };
}
