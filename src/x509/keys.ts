/**
 * Host private keys: generated with Node's crypto (RSA 2048 by default, RSA 4096,
 * EC P-256), described by their public facts (type, SPKI SHA-256) and refused when
 * weaker than RSA 2048 or EC P-256. The PKCS#8 bytes are secret: they go to the vault
 * to be sealed, and are wiped by the caller.
 */
import { createECDH, createHash, createPrivateKey, createPublicKey, generateKeyPair, getCurves, sign, verify, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyType } from '../config.js';
import { PasstoreError } from '../errors.js';
import { bytesOf, children, contentOf, encode, lengthOf, TAG, unsignedInteger, whole, type Tlv } from './der.js';

const generate = promisify(generateKeyPair);

/** The public facts of a key pair, in cleartext by design. */
export interface KeyFacts {
  /** rsa-2048, rsa-4096, ec-p256, ec-p384, … */
  type: string;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo: how keys and certificates are paired. */
  spkiSha256: string;
}

const RSA_ENCRYPTION = Buffer.from('2a864886f70d010101', 'hex');
const EC_PUBLIC_KEY = Buffer.from('2a8648ce3d0201', 'hex');
/** The SPKI of an EC key on each named curve, up to the uncompressed point's 0x04. */
const EC_SPKI_PREFIX: Record<string, Buffer> = {
  'P-256': Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
  'P-384': Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
  'P-521': Buffer.from('30819b301006072a8648ce3d020106052b8104002303818600', 'hex'),
};

/**
 * A public key's DER SubjectPublicKeyInfo. Built from the key's JWK components (RSA n and
 * e, EC x and y): byte for byte what `export({ type: 'spki' })` gives, without OpenSSL's
 * encoder, which costs twenty times as much (a bulk import hashes every key).
 */
export function spkiDer(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  // JWK export exists for RSA and EC (and the EdDSA/X curves); other types go to OpenSSL.
  if (pub.asymmetricKeyType !== 'rsa' && pub.asymmetricKeyType !== 'ec') return pub.export({ type: 'spki', format: 'der' });
  const jwk = pub.export({ format: 'jwk' });
  if (jwk.kty === 'EC' && jwk.crv && EC_SPKI_PREFIX[jwk.crv] && jwk.x && jwk.y) {
    return Buffer.concat([EC_SPKI_PREFIX[jwk.crv]!, Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  }
  if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
    const rsaPublicKey = encode(TAG.sequence, unsignedInteger(Buffer.from(jwk.n, 'base64url')), unsignedInteger(Buffer.from(jwk.e, 'base64url')));
    return encode(TAG.sequence, encode(TAG.sequence, encode(TAG.oid, RSA_ENCRYPTION), encode(TAG.null)), encode(TAG.bitString, Buffer.from([0]), rsaPublicKey));
  }
  return pub.export({ type: 'spki', format: 'der' });
}

/** Hex SHA-256 of a public key's DER SubjectPublicKeyInfo. */
export function spkiSha256(key: KeyObject): string {
  return createHash('sha256').update(spkiDer(key)).digest('hex');
}

/**
 * Loads a private key from DER: `pkcs8`, `pkcs1` (RSA) or `sec1` (EC). A PKCS#8 RSA or
 * EC key is unwrapped and loaded by OpenSSL's legacy PKCS#1 or SEC1 reader (the curve
 * from the PKCS#8 algorithm put into the SEC1 structure when it lacks one): the same key,
 * at a third of the cost of the generic PKCS#8 decoder. Any other shape, or anything that
 * does not parse, goes to the generic decoder, which decides.
 * @throws whatever createPrivateKey throws for a key it cannot read
 */
export function loadPrivateKeyDer(der: Buffer, type: 'pkcs8' | 'pkcs1' | 'sec1'): KeyObject {
  if (type === 'pkcs8') {
    const inner = unwrapPkcs8(der);
    if (inner) {
      try {
        return createPrivateKey({ key: inner.der, format: 'der', type: inner.type });
      } catch {
        // not what it seemed: the generic decoder below decides
      } finally {
        if (inner.copy) inner.der.fill(0);
      }
    }
  }
  return createPrivateKey({ key: der, format: 'der', type });
}

/** Whether `fields` are some of the optional fields tagged `tags`, each at most once, in that order. */
function optionalInOrder(fields: Tlv[], tags: number[]): boolean {
  let i = 0;
  for (const t of tags) if (fields[i]?.tag === t) i++;
  return i === fields.length;
}

/**
 * The PKCS#1 or SEC1 key inside a PKCS#8 structure, or undefined for any other shape.
 * `copy`: the bytes were rebuilt (secret: the caller wipes them); else they are a view.
 */
function unwrapPkcs8(der: Buffer): { der: Buffer; type: 'pkcs1' | 'sec1'; copy?: boolean } | undefined {
  try {
    // Only the exact shape is taken here; anything else is the generic decoder's to judge.
    // OneAsymmetricKey ::= SEQUENCE { version 0|1, algorithm, privateKey OCTET STRING, [0] attributes OPTIONAL, [1] publicKey OPTIONAL }
    const top = whole(der);
    if (top.tag !== TAG.sequence) return undefined;
    const [version, algorithm, privateKey, ...after] = children(der, top);
    if (!version || version.tag !== TAG.integer || version.end - version.start !== 1 || der[version.start]! > 1 || !algorithm || algorithm.tag !== TAG.sequence || !privateKey || privateKey.tag !== TAG.octetString) return undefined;
    if (!optionalInOrder(after, [TAG.context0, 0x81])) return undefined;
    const [oid, params, ...more] = children(der, algorithm);
    if (!oid || oid.tag !== TAG.oid || more.length > 0) return undefined;
    const inner = contentOf(der, privateKey);
    if (contentOf(der, oid).equals(RSA_ENCRYPTION)) {
      // rsaEncryption's parameters are NULL (or absent); its key an RSAPrivateKey SEQUENCE.
      if (params && (params.tag !== TAG.null || params.end !== params.start)) return undefined;
      return whole(inner).tag === TAG.sequence ? { der: inner, type: 'pkcs1' } : undefined;
    }
    if (!contentOf(der, oid).equals(EC_PUBLIC_KEY) || !params || params.tag !== TAG.oid) return undefined;
    // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters OPTIONAL, [1] publicKey OPTIONAL }
    const ecTop = whole(inner);
    if (ecTop.tag !== TAG.sequence) return undefined;
    const fields = children(inner, ecTop);
    const [ecVersion, ecKey, ...rest] = fields;
    if (!ecVersion || ecVersion.tag !== TAG.integer || !inner.subarray(ecVersion.start, ecVersion.end).equals(Buffer.from([1])) || !ecKey || ecKey.tag !== TAG.octetString) return undefined;
    if (!optionalInOrder(rest, [TAG.context0, TAG.context1])) return undefined;
    const curve = bytesOf(der, params);
    const given = rest.find((f) => f.tag === TAG.context0);
    if (given) return contentOf(inner, given).equals(curve) ? { der: inner, type: 'sec1' } : undefined;
    // Rebuilt in one buffer, so no stray copy of the private scalar is left to the collector.
    const context0 = encode(TAG.context0, curve);
    const parts = [bytesOf(inner, ecVersion), bytesOf(inner, ecKey), context0, ...rest.map((f) => bytesOf(inner, f))];
    const bodyLength = parts.reduce((n, b) => n + b.length, 0);
    const length = lengthOf(bodyLength);
    const out = Buffer.alloc(1 + length.length + bodyLength);
    out[0] = TAG.sequence;
    out.set(length, 1);
    let at = 1 + length.length;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return { der: out, type: 'sec1', copy: true };
  } catch {
    return undefined;
  }
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
  return loadPrivateKeyDer(pkcs8, 'pkcs8');
}

/** PEM of a PKCS#8 private key (for deployment; the caller wipes it). */
export function pkcs8Pem(pkcs8: Buffer): Buffer {
  const b64 = pkcs8.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return Buffer.from(`-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`);
}

const PROOF_MESSAGE = Buffer.from('passtore: proof that this private key works');

/**
 * The integers of an RSAPrivateKey (PKCS#1: version, n, e, d, p, q, dp, dq, qi), read from
 * its DER in a buffer the caller wipes (a JWK export would leave them in strings).
 */
function rsaComponents(der: Buffer): bigint[] {
  const top = whole(der);
  return children(der, top)
    .slice(1, 9)
    .map((t) => {
      if (t.tag !== TAG.integer) throw new Error('not an RSAPrivateKey');
      return BigInt(`0x${contentOf(der, t).toString('hex') || '0'}`);
    });
}

/** The RSAPrivateKey inside DER of `type` (a view, not a copy), or undefined for any other shape. */
function rsaPrivateKeyDer(der: Buffer, type: 'pkcs8' | 'pkcs1' | 'sec1'): Buffer | undefined {
  if (type === 'pkcs1') return der;
  if (type !== 'pkcs8') return undefined;
  try {
    const [, algorithm, privateKey] = children(der, whole(der));
    if (!algorithm || !privateKey || privateKey.tag !== TAG.octetString) return undefined;
    const [oid] = children(der, algorithm);
    if (!oid || !contentOf(der, oid).equals(RSA_ENCRYPTION)) return undefined;
    return contentOf(der, privateKey);
  } catch {
    return undefined;
  }
}

/**
 * Proves the private half of a key before it is stored. EC: computes d·G from the private
 * scalar d alone (one fixed-base multiplication, a third of a signature made and verified)
 * and compares it with the key's public point Q, the one its SPKI (and so the pairing with
 * a certificate) is made of; a SEC1 or PKCS#8 key carries Q beside d, and a broken key has
 * Q right and d wrong, so Q is never taken as proof. Other key types: a fixed message signed
 * and verified with the public half. RSA: checks the components the way
 * `openssl rsa -check` does (n = p·q, d·e ≡ 1 mod p−1 and q−1, the CRT exponents and
 * coefficient), which proves the key given that n is the certificate's; a signature
 * would not do, because OpenSSL signs with the CRT components and never uses d (a key
 * whose d is wrong signs correctly, yet fails wherever d is used). Pairing compares
 * public keys only; this is what makes a pair honest.
 * @throws PasstoreError('mismatch') naming what is wrong with the key
 */
export function proveKey(key: KeyObject, from?: { der: Buffer; type: 'pkcs8' | 'pkcs1' | 'sec1' }): void {
  let ok: boolean;
  try {
    if (key.asymmetricKeyType === 'rsa') {
      // The components from the DER the key was read from, when the caller has it: OpenSSL's
      // encoder would cost as much as the signature.
      let parts: bigint[] | undefined;
      const given = from && rsaPrivateKeyDer(from.der, from.type);
      if (given) {
        try {
          parts = rsaComponents(given);
        } catch {
          parts = undefined;
        }
      }
      if (!parts) {
        const der = key.export({ type: 'pkcs1', format: 'der' });
        try {
          parts = rsaComponents(der);
        } finally {
          der.fill(0);
        }
      }
      if (parts.length !== 8) throw new PasstoreError('mismatch', 'damaged RSA private key: its components are incomplete');
      const [n, e, d, p, q, dp, dq, qi] = parts as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
      if (p <= 1n || q <= 1n || p * q !== n) throw new PasstoreError('mismatch', 'damaged RSA private key: n is not p·q');
      if ((d * e) % (p - 1n) !== 1n || (d * e) % (q - 1n) !== 1n) throw new PasstoreError('mismatch', 'damaged RSA private key: d·e is not congruent to 1 (its private exponent is wrong)');
      if (dp !== d % (p - 1n) || dq !== d % (q - 1n) || (qi * q) % p !== 1n) throw new PasstoreError('mismatch', 'damaged RSA private key: its CRT components do not agree with d, p and q');
      // n is the certificate's (the SPKI matched), the product of two primes: p·q = n with
      // p, q > 1 makes them those primes, and with d·e ≡ 1 modulo p−1 and q−1 every
      // signature verifies. A test signature would add nothing but its cost (an RSA
      // private operation on a key just loaded, ~0.5 ms: more than reading the pair).
      return;
    }
    if (key.asymmetricKeyType === 'ec') {
      const proven = ecScalarMatchesPoint(key);
      if (proven !== undefined) {
        if (!proven) throw new PasstoreError('mismatch', 'damaged EC private key: its private scalar does not give its public point (d·G ≠ Q)');
        return;
      }
    }
    const signature = sign('sha256', PROOF_MESSAGE, key);
    ok = verify('sha256', PROOF_MESSAGE, key, signature);
  } catch (e) {
    if (e instanceof PasstoreError) throw e;
    ok = false;
  }
  if (!ok) throw new PasstoreError('mismatch', `damaged ${key.asymmetricKeyType ?? ''} private key: a signature made with it does not verify with its public key`);
}

let ecdhCurves: Set<string> | undefined;

/**
 * Whether an EC key's private scalar gives its public point: d·G = Q. Undefined when the
 * curve is one Node's ECDH does not know (the caller falls back to a signature). A fresh
 * ECDH object each time: OpenSSL clears its scalar when it is freed, so none is kept alive.
 */
function ecScalarMatchesPoint(key: KeyObject): boolean | undefined {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!curve) return undefined;
  ecdhCurves ??= new Set(getCurves());
  if (!ecdhCurves.has(curve)) return undefined;
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.d || !jwk.x || !jwk.y) return undefined;
  const d = Buffer.from(jwk.d, 'base64url');
  try {
    // setPrivateKey refuses a scalar outside 0 < d < n and computes d·G.
    const ecdh = createECDH(curve);
    ecdh.setPrivateKey(d);
    const computed = ecdh.getPublicKey();
    const x = Buffer.from(jwk.x, 'base64url');
    const y = Buffer.from(jwk.y, 'base64url');
    return computed.length === 1 + x.length + y.length && computed[0] === 4 && computed.subarray(1, 1 + x.length).equals(x) && computed.subarray(1 + x.length).equals(y);
  } catch {
    return false;
  } finally {
    d.fill(0);
  }
}
