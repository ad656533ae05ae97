/**
 * The containers CAs and old sites deliver certificates and keys in, opened into the
 * plain DER objects the rest of passtore reads: PKCS#7 certificate bundles (`.p7b`,
 * `.p7c`), PKCS#12 files (`.p12`, `.pfx`) and encrypted PKCS#8 keys, including the
 * PBES1 ones Node's OpenSSL 3 no longer decrypts without its legacy provider.
 *
 * node-forge (already in the tree through acme-client, and the package this project
 * chose for PKCS#12) does the PKCS#12 container and its ciphers (PBES2 with AES, the
 * legacy RC2/3DES PKCS#12 schemes, the SHA-1 and SHA-2 MACs), and its PBKDF2 runs on
 * Node's native one. It parses neither EC keys nor EC certificates, so it is used only to
 * open the container: every key and certificate found inside is handed over as its DER
 * bytes, untouched, and read by Node's crypto like any other file. Its key derivations
 * (PBKDF2 with a SHA-2 PRF, and the PKCS#12 KDF of the MAC and the legacy ciphers) run in
 * pure JavaScript, ~75 ms a file; while a file is opened they are replaced by the same
 * functions on Node's hashes (~5 ms a file).
 */
import { createHash, createPrivateKey, hash as oneShot, pbkdf2Sync, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type forge from 'node-forge';
import { PasstoreError } from '../errors.js';
import { children, contentOf, tlv, whole, type Tlv } from './der.js';
import { oidText } from './dn.js';

let loaded: typeof forge | undefined;
/**
 * node-forge, loaded at its first use: only PKCS#7, PKCS#12 and encrypted keys need it,
 * and loading it costs about 35 ms, which every start of the shell paid before its prompt.
 */
function lib(): typeof forge {
  return (loaded ??= createRequire(import.meta.url)('node-forge') as typeof forge);
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  pbes2: '1.2.840.113549.1.5.13',
} as const;

/** The PBES1 schemes of PKCS#5: the hash and the cipher of each. */
const PBES1: Record<string, { hash: 'md5' | 'sha1' | 'md2'; cipher: 'des' | 'rc2'; name: string }> = {
  '1.2.840.113549.1.5.1': { hash: 'md2', cipher: 'des', name: 'PBES1 MD2-DES' },
  '1.2.840.113549.1.5.4': { hash: 'md2', cipher: 'rc2', name: 'PBES1 MD2-RC2' },
  '1.2.840.113549.1.5.3': { hash: 'md5', cipher: 'des', name: 'PBES1 MD5-DES' },
  '1.2.840.113549.1.5.6': { hash: 'md5', cipher: 'rc2', name: 'PBES1 MD5-RC2' },
  '1.2.840.113549.1.5.10': { hash: 'sha1', cipher: 'des', name: 'PBES1 SHA1-DES' },
  '1.2.840.113549.1.5.11': { hash: 'sha1', cipher: 'rc2', name: 'PBES1 SHA1-RC2' },
};

const oidOf = (der: Buffer, t: Tlv | undefined): string | undefined => (t?.tag === 0x06 ? oidText(contentOf(der, t)) : undefined);

/** forge's "binary string" of bytes, and back. */
const binary = (b: Buffer): string => b.toString('latin1');
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A BER/DER tree read by forge (which takes indefinite lengths, as some CA portals write them). */
function forgeAsn1(der: Buffer): forge.asn1.Asn1 | undefined {
  try {
    return lib().asn1.fromDer(binary(der), { strict: false, parseAllBytes: true } as unknown as boolean);
  } catch {
    return undefined;
  }
}

const forgeOid = (node: forge.asn1.Asn1 | undefined): string | undefined =>
  node && node.tagClass === lib().asn1.Class.UNIVERSAL && node.type === lib().asn1.Type.OID && typeof node.value === 'string' ? lib().asn1.derToOid(node.value) : undefined;

/**
 * The certificates of a PKCS#7 SignedData (a "certs-only" bundle), each as its DER, in
 * order; undefined when `der` is not PKCS#7 SignedData. DER is read here byte for byte;
 * a BER file (indefinite lengths) through forge.
 */
export function pkcs7Certificates(der: Buffer): Buffer[] | undefined {
  try {
    const top = whole(der);
    const [type, content] = children(der, top);
    if (top.tag !== 0x30 || oidOf(der, type) !== OID.signedData || content?.tag !== 0xa0) return undefined;
    const signedData = tlv(der, content.start);
    const certs = children(der, signedData).find((f) => f.tag === 0xa0);
    return certs ? children(der, certs).filter((c) => c.tag === 0x30).map((c) => Buffer.from(der.subarray(c.at, c.end))) : [];
  } catch {
    // not DER: try BER below
  }
  const tree = forgeAsn1(der);
  if (!tree || !Array.isArray(tree.value) || forgeOid(tree.value[0] as forge.asn1.Asn1) !== OID.signedData) return undefined;
  const wrapper = tree.value[1] as forge.asn1.Asn1 | undefined;
  const signedData = Array.isArray(wrapper?.value) ? (wrapper.value[0] as forge.asn1.Asn1) : undefined;
  if (!signedData || !Array.isArray(signedData.value)) return undefined;
  const certs = (signedData.value as forge.asn1.Asn1[]).find((f) => f.tagClass === lib().asn1.Class.CONTEXT_SPECIFIC && f.type === 0);
  if (!certs || !Array.isArray(certs.value)) return [];
  return (certs.value as forge.asn1.Asn1[]).filter((c) => c.type === lib().asn1.Type.SEQUENCE).map((c) => bytes(lib().asn1.toDer(c).getBytes()));
}

/** Whether `der` is a PKCS#12 PFX (version 3, then a ContentInfo). */
export function isPkcs12(der: Buffer): boolean {
  try {
    const top = whole(der);
    const [version, authSafe] = children(der, top);
    return top.tag === 0x30 && version?.tag === 0x02 && contentOf(der, version).equals(Buffer.from([3])) && authSafe?.tag === 0x30 && [OID.data, OID.signedData].includes(oidOf(der, children(der, authSafe)[0]) as typeof OID.data);
  } catch {
    const tree = forgeAsn1(der);
    const v = Array.isArray(tree?.value) ? (tree.value[0] as forge.asn1.Asn1) : undefined;
    const auth = Array.isArray(tree?.value) ? (tree.value[1] as forge.asn1.Asn1) : undefined;
    return v?.type === lib().asn1.Type.INTEGER && v.value === '\x03' && Array.isArray(auth?.value) && forgeOid(auth.value[0] as forge.asn1.Asn1) === OID.data;
  }
}

/**
 * Whether `der` has the shape of an EncryptedPrivateKeyInfo: SEQUENCE { SEQUENCE { OID,
 * parameters }, OCTET STRING }, with an encryption scheme passtore knows of.
 */
export function isEncryptedPkcs8(der: Buffer): boolean {
  try {
    const top = whole(der);
    const [algorithm, data, ...more] = children(der, top);
    if (top.tag !== 0x30 || algorithm?.tag !== 0x30 || data?.tag !== 0x04 || more.length) return false;
    const oid = oidOf(der, children(der, algorithm)[0]);
    return oid !== undefined && (oid === OID.pbes2 || oid in PBES1 || oid.startsWith('1.2.840.113549.1.12.1.'));
  } catch {
    return false;
  }
}

/** What a PKCS#12 file held, as DER: keys (PKCS#8, secret: the caller wipes them) and certificates. */
export interface Pkcs12Contents {
  keys: Buffer[];
  certs: Buffer[];
}

/**
 * Opens a PKCS#12 file with a password (null: a file with no password at all).
 * @throws PasstoreError('bad-passphrase') when the password is wrong; PasstoreError('mismatch') naming
 * what is unsupported or damaged otherwise
 */
export function openPkcs12(der: Buffer, password: string | null): Pkcs12Contents {
  const tree = forgeAsn1(der);
  if (!tree) throw new PasstoreError('mismatch', 'damaged PKCS#12 file (its ASN.1 does not parse)');
  const pki = lib().pki as unknown as Record<string, unknown>;
  const keyFromAsn1 = pki.privateKeyFromAsn1;
  const certFromAsn1 = pki.certificateFromAsn1;
  // forge would parse each key and certificate itself (and fail on EC ones): it is made to
  // hand over the ASN.1 of each instead, which Node reads. Synchronous, so nothing else
  // runs while the two functions are replaced.
  const refuse = () => {
    throw new Error('read by Node');
  };
  const pkcs5 = lib().pkcs5 as unknown as Record<string, unknown>;
  const pkcs12 = lib().pkcs12 as unknown as Record<string, unknown>;
  const pbe = (lib().pki as unknown as { pbe: Record<string, unknown> }).pbe;
  const [pbkdf2, generateKey, generatePkcs12Key] = [pkcs5.pbkdf2, pkcs12.generateKey, pbe.generatePkcs12Key];
  pki.privateKeyFromAsn1 = refuse;
  pki.certificateFromAsn1 = refuse;
  pkcs5.pbkdf2 = nativePbkdf2;
  pkcs12.generateKey = nativePkcs12Key;
  pbe.generatePkcs12Key = nativePkcs12Key;
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = lib().pkcs12.pkcs12FromAsn1(tree, false, password as string);
  } catch (e) {
    const why = String((e as Error)?.message ?? e);
    if (/Invalid password|wrong password|Failed to decrypt|MAC could not be verified/i.test(why)) throw new PasstoreError('bad-passphrase', 'wrong passphrase for the PKCS#12 file');
    const oid = (e as { oid?: string }).oid;
    throw new PasstoreError('mismatch', `PKCS#12 file not readable: ${why.replace(/\.$/, '')}${oid ? ` (${oid})` : ''}`);
  } finally {
    pki.privateKeyFromAsn1 = keyFromAsn1;
    pki.certificateFromAsn1 = certFromAsn1;
    pkcs5.pbkdf2 = pbkdf2;
    pkcs12.generateKey = generateKey;
    pbe.generatePkcs12Key = generatePkcs12Key;
  }
  const out: Pkcs12Contents = { keys: [], certs: [] };
  for (const safe of p12.safeContents) {
    for (const bag of safe.safeBags) {
      const asn1 = (bag as { asn1?: forge.asn1.Asn1 }).asn1;
      if (!asn1) continue;
      const der = bytes(lib().asn1.toDer(asn1).getBytes());
      if (bag.type === lib().pki.oids.certBag) out.certs.push(der);
      else if (bag.type === lib().pki.oids.keyBag || bag.type === lib().pki.oids.pkcs8ShroudedKeyBag) out.keys.push(der);
    }
  }
  return out;
}

/** A forge message digest: what its name and sizes are. */
interface ForgeMd {
  algorithm: string;
  digestLength: number;
  blockLength: number;
}

const nodeHash = (md: ForgeMd | undefined | null): string => (md ? md.algorithm.replace(/^sha512\/(\d+)$/, 'sha512-$1') : 'sha1');

/** forge.pkcs5.pbkdf2 (synchronous form) on Node's PBKDF2. */
function nativePbkdf2(password: string, salt: string, iterations: number, length: number, md?: ForgeMd | string | null): string {
  const hash = typeof md === 'string' ? md : nodeHash(md);
  return pbkdf2Sync(bytes(password), bytes(salt), iterations, length, hash).toString('latin1');
}

/**
 * forge's PKCS#12 key derivation (RFC 7292 appendix B.2) on Node's hashes: the password
 * as a BMPString with its terminator, the salt a forge buffer; returns a forge buffer.
 */
function nativePkcs12Key(password: string | null | undefined, salt: forge.util.ByteStringBuffer, id: number, iterations: number, n: number, md?: ForgeMd | null): forge.util.ByteStringBuffer {
  if (!(iterations >= 1)) throw new Error('PKCS#12 key derivation iteration count must be >= 1.');
  const hash = nodeHash(md);
  const u = md?.digestLength ?? 20;
  const v = md?.blockLength ?? 64;
  const pass = password === null || password === undefined ? Buffer.alloc(0) : Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; password && i < password.length; i++) pass.writeUInt16BE(password.charCodeAt(i), i * 2);
  const saltBytes = bytes(salt.bytes());
  const fill = (src: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(saltBytes), fill(pass)]);
  const out: Buffer[] = [];
  for (let made = 0; made < n; made += u) {
    let A = createHash(hash).update(D).update(I).digest();
    // One-shot hashing: a Hash object per round costs three times as much.
    for (let i = 1; i < iterations; i++) A = oneShot(hash, A, 'buffer');
    out.push(A);
    const B = Buffer.alloc(v);
    for (let i = 0; i < v; i++) B[i] = A[i % u]!;
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  pass.fill(0);
  I.fill(0);
  const key = Buffer.concat(out).subarray(0, n);
  const result = lib().util.createBuffer(binary(key));
  key.fill(0);
  return result;
}

/** The name of an EncryptedPrivateKeyInfo's encryption scheme (PBES2 with its cipher, or PBES1 …). */
export function encryptionScheme(der: Buffer): string {
  try {
    const top = whole(der);
    const [algorithm] = children(der, top);
    const [oid, params] = children(der, algorithm!);
    const dotted = oidOf(der, oid)!;
    if (dotted in PBES1) return PBES1[dotted]!.name;
    if (dotted === OID.pbes2 && params) {
      const [kdf, enc] = children(der, params);
      const cipher = oidOf(der, children(der, enc!)[0]) ?? '?';
      const kdfOid = oidOf(der, children(der, kdf!)[0]) ?? '?';
      const names: Record<string, string> = {
        '2.16.840.1.101.3.4.1.2': 'AES-128-CBC',
        '2.16.840.1.101.3.4.1.22': 'AES-192-CBC',
        '2.16.840.1.101.3.4.1.42': 'AES-256-CBC',
        '1.2.840.113549.3.7': 'DES-EDE3-CBC',
        '1.3.14.3.2.7': 'DES-CBC',
        '1.2.840.113549.3.2': 'RC2-CBC',
        '1.2.840.113549.1.5.12': 'PBKDF2',
        '1.3.6.1.4.1.11591.4.11': 'scrypt',
      };
      return `PBES2 ${names[kdfOid] ?? kdfOid} ${names[cipher] ?? cipher}`;
    }
    return dotted;
  } catch {
    return 'an unknown scheme';
  }
}

/**
 * Decrypts an encrypted PKCS#8 key (DER) with a passphrase. Node's OpenSSL decrypts
 * PBES2 and the PKCS#12 schemes; PBES1 (MD5 or SHA-1 with DES or RC2, what `openssl pkcs8
 * -v1` and old Java keytools write) needs OpenSSL's legacy provider there, so it is done
 * here: PBKDF1 with Node's hash, the cipher from forge.
 * @throws PasstoreError('bad-passphrase') for a wrong passphrase; PasstoreError('mismatch')
 * naming the scheme when it cannot be decrypted at all
 */
export function decryptPkcs8(der: Buffer, passphrase: Buffer): KeyObject {
  const scheme = encryptionScheme(der);
  const pbes1 = Object.values(PBES1).find((s) => s.name === scheme);
  if (pbes1) {
    if (pbes1.hash === 'md2') throw new PasstoreError('mismatch', `encrypted key uses ${scheme}, which passtore does not decrypt (MD2 is broken): convert it with openssl pkcs8 -topk8 -v2 aes-256-cbc`);
    const plain = pbes1Decrypt(der, passphrase, pbes1.hash, pbes1.cipher);
    if (!plain) throw new PasstoreError('bad-passphrase', 'wrong passphrase for the encrypted key, or the key is damaged');
    try {
      return createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
    } catch {
      throw new PasstoreError('bad-passphrase', 'wrong passphrase for the encrypted key, or the key is damaged');
    } finally {
      plain.fill(0);
    }
  }
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase });
  } catch (e) {
    const why = String((e as Error)?.message ?? e);
    if (/unsupported/i.test(why)) throw new PasstoreError('mismatch', `encrypted key uses ${scheme}, which this Node's OpenSSL does not decrypt: convert it with openssl pkcs8 -topk8 -v2 aes-256-cbc`);
    throw new PasstoreError('bad-passphrase', 'wrong passphrase for the encrypted key, or the key is damaged');
  }
}

/** PBES1 (PKCS#5 v1.5): PBKDF1 key and IV, DES-CBC or RC2-CBC (64-bit); the plaintext or undefined. */
function pbes1Decrypt(der: Buffer, passphrase: Buffer, hash: 'md5' | 'sha1', cipher: 'des' | 'rc2'): Buffer | undefined {
  const top = whole(der);
  const [algorithm, data] = children(der, top);
  const [, params] = children(der, algorithm!);
  const [salt, count] = children(der, params!);
  if (salt?.tag !== 0x04 || count?.tag !== 0x02) return undefined;
  const iterations = contentOf(der, count).reduce((n, b) => n * 256 + b, 0);
  if (iterations < 1 || iterations > 10_000_000) return undefined;
  let t = createHash(hash).update(passphrase).update(contentOf(der, salt)).digest();
  for (let i = 1; i < iterations; i++) t = createHash(hash).update(t).digest();
  const key = t.subarray(0, 8);
  const iv = t.subarray(8, 16);
  let decipher: forge.cipher.BlockCipher;
  if (cipher === 'des') {
    decipher = lib().cipher.createDecipher('DES-CBC', binary(key));
    decipher.start({ iv: binary(iv) });
  } else {
    const rc2 = lib().rc2.createDecryptionCipher(binary(key), 64);
    rc2.start(binary(iv));
    decipher = rc2 as unknown as forge.cipher.BlockCipher;
  }
  decipher.update(lib().util.createBuffer(binary(contentOf(der, data!))));
  const ok = decipher.finish();
  t.fill(0);
  if (!ok) return undefined;
  return bytes(decipher.output.getBytes());
}
