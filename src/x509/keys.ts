/**
 * Host private keys: generated with Node's crypto (RSA 2048 by default, RSA 4096,
 * EC P-256), described by their public facts (type, SPKI SHA-256) and refused when
 * weaker than RSA 2048 or EC P-256. The PKCS#8 bytes are secret: they go to the vault
 * to be sealed, and are wiped by the caller.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyType } from '../config.js';
import { PasstoreError } from '../errors.js';

const generate = promisify(generateKeyPair);

/** The public facts of a key pair, in cleartext by design. */
export interface KeyFacts {
  /** rsa-2048, rsa-4096, ec-p256, ec-p384, … */
  type: string;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo: how keys and certificates are paired. */
  spkiSha256: string;
}

/** Hex SHA-256 of a public key's DER SubjectPublicKeyInfo. */
export function spkiSha256(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Describes a key and refuses a weak one (RSA under 2048 bits, EC other than P-256/384/521). */
export function keyFacts(key: KeyObject): KeyFacts {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    if (bits < 2048) throw new PasstoreError('policy', `RSA key of ${bits} bits refused: the minimum is 2048`);
    return { type: `rsa-${bits}`, spkiSha256: spkiSha256(key) };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = { prime256v1: 'p256', secp384r1: 'p384', secp521r1: 'p521' }[d.namedCurve ?? ''];
    if (!curve) throw new PasstoreError('policy', `EC key on curve ${d.namedCurve ?? 'unknown'} refused: use P-256 or stronger`);
    return { type: `ec-${curve}`, spkiSha256: spkiSha256(key) };
  }
  throw new PasstoreError('policy', `${key.asymmetricKeyType ?? 'unknown'} keys are not supported (RSA or EC only)`);
}

/** A private key as PKCS#8 DER (secret: wipe it) with its public facts. */
export interface GeneratedKey {
  pkcs8: Buffer;
  facts: KeyFacts;
}

/** Generates a key with Node's crypto. */
export async function generateKey(type: KeyType): Promise<GeneratedKey> {
  const pair =
    type === 'ec-p256'
      ? await generate('ec', { namedCurve: 'prime256v1' })
      : await generate('rsa', { modulusLength: type === 'rsa-4096' ? 4096 : 2048, publicExponent: 0x10001 });
  const pkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
  return { pkcs8, facts: keyFacts(pair.privateKey) };
}

/** Loads PKCS#8 DER back into a key object (for signing requests and checks). */
export function loadPkcs8(pkcs8: Buffer): KeyObject {
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** PEM of a PKCS#8 private key (for deployment; the caller wipes it). */
export function pkcs8Pem(pkcs8: Buffer): Buffer {
  const b64 = pkcs8.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return Buffer.from(`-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`);
}
