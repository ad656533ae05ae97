/**
 * Reads certificates and private keys out of a file's bytes: any number of PEM blocks
 * (certificates, PKCS#8, PKCS#1 and SEC1 keys, encrypted keys), or one DER object.
 * Nothing here trusts a file name; every object is identified by what it is.
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { parseCertificate, type CertFacts } from './certificate.js';
import { keyFacts, loadPrivateKeyDer, type KeyFacts } from './keys.js';

export type Found =
  | { kind: 'certificate'; cert: X509Certificate; facts: CertFacts }
  | { kind: 'key'; key: KeyObject; facts: KeyFacts }
  | { kind: 'encrypted-key'; pem: string };

export interface FileContents {
  objects: Found[];
  /** Why parts of the file could not be used (one entry per bad part). */
  problems: string[];
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const IGNORED = new Set(['EC PARAMETERS', 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST', 'PUBLIC KEY', 'X509 CRL']);

/** Decrypts an encrypted PEM key with a passphrase; refuses a wrong one clearly. */
export function decryptKey(pem: string, passphrase: Buffer): { key: KeyObject; facts: KeyFacts } {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    throw new PasstoreError('bad-passphrase', 'wrong passphrase for the encrypted key, or the key is damaged');
  }
  return { key, facts: keyFacts(key) };
}

const DER_TYPE = { 'PRIVATE KEY': 'pkcs8', 'RSA PRIVATE KEY': 'pkcs1', 'EC PRIVATE KEY': 'sec1' } as const;

/** A private key from its DER (wiped afterwards when `wipe`), with its facts. */
function keyFrom(der: Buffer, type: 'pkcs8' | 'pkcs1' | 'sec1', wipe: boolean): { key: KeyObject; facts: KeyFacts } {
  try {
    const key = loadPrivateKeyDer(der, type);
    return { key, facts: keyFacts(key) };
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

function policyOr(e: unknown, fallback: string): string {
  return e instanceof PasstoreError && e.code === 'policy' ? e.message : fallback;
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
    if (label === 'CERTIFICATE' || label === 'X509 CERTIFICATE' || label === 'TRUSTED CERTIFICATE') {
      try {
        const { cert, facts } = parseCertificate(pem);
        objects.push({ kind: 'certificate', cert, facts });
      } catch (e) {
        problems.push(policyOr(e, 'damaged certificate block'));
      }
    } else if (label === 'ENCRYPTED PRIVATE KEY' || (/PRIVATE KEY$/.test(label!) && /Proc-Type:\s*4,ENCRYPTED/.test(pem))) {
      objects.push({ kind: 'encrypted-key', pem });
    } else if (label === 'PRIVATE KEY' || label === 'RSA PRIVATE KEY' || label === 'EC PRIVATE KEY') {
      try {
        const der = pemBody(pem);
        if (der) objects.push({ kind: 'key', ...keyFrom(der, DER_TYPE[label], true) });
        else {
          const key = createPrivateKey({ key: pem, format: 'pem' });
          objects.push({ kind: 'key', key, facts: keyFacts(key) });
        }
      } catch (e) {
        problems.push(policyOr(e, `damaged ${label} block`));
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
    // not a DER certificate; try the key encodings
  }
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return { objects: [{ kind: 'key', ...keyFrom(data, type, false) }], problems: [] };
    } catch (e) {
      if (e instanceof PasstoreError) return { objects: [], problems: [e.message] };
    }
  }
  return { objects: [], problems: ['neither PEM nor a DER certificate or key'] };
}
