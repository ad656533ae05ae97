/**
 * The vault-held SSH deploy key: an Ed25519 key pair made with Node's crypto. The private
 * half is kept as PKCS#8 DER and sealed by the vault; for a connection it is turned into
 * OpenSSH's private key format in a Buffer, in memory only, handed to ssh2 and wiped
 * afterwards. It is never written to a file nor passed as an argument.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { PasstoreError } from '../errors.js';

/** A new key pair: PKCS#8 DER (secret, the caller seals and wipes it) and its public line. */
export function generateDeployKey(comment: string): { pkcs8: Buffer; publicKey: string; fingerprint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const raw = rawPublic(publicKey.export({ format: 'der', type: 'spki' }));
  const blob = publicBlob(raw);
  return { pkcs8, publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`, fingerprint: fingerprintOf(blob) };
}

/** `SHA256:…` of a public key blob, as ssh-keygen -l prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key blob (second field) of an `authorized_keys` line. */
export function blobOf(publicKey: string): string {
  const blob = publicKey.split(' ')[1];
  if (!blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) throw new PasstoreError('integrity', 'a stored deploy key has a malformed public half');
  return blob;
}

function rawPublic(spki: Buffer): Buffer {
  // Ed25519 SubjectPublicKeyInfo: a fixed 12-byte header, then the 32-byte key.
  if (spki.length !== 44) throw new PasstoreError('integrity', 'not an Ed25519 public key');
  return spki.subarray(12);
}

function str(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

function publicBlob(raw: Buffer): Buffer {
  return Buffer.concat([str('ssh-ed25519'), str(raw)]);
}

/**
 * The private key in OpenSSH's format (`openssh-key-v1`, unencrypted), as ssh2 reads it.
 * Every intermediate buffer holding the seed is wiped; the caller wipes the result.
 */
export function openSshPrivateKey(pkcs8: Buffer): Buffer {
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType !== 'ed25519') throw new PasstoreError('integrity', 'the stored deploy key is not an Ed25519 key');
  // Ed25519 PKCS#8: a fixed 16-byte header, then the 32-byte seed.
  const seed = pkcs8.subarray(16, 48);
  const raw = rawPublic(createPublicKey(key).export({ format: 'der', type: 'spki' }));
  const check = randomBytes(4);
  const secret = Buffer.concat([seed, raw]);
  const parts = [check, check, str('ssh-ed25519'), str(raw), str(secret), str('passtore')];
  let priv = Buffer.concat(parts);
  secret.fill(0);
  parts[4]!.fill(0);
  const pad = (8 - (priv.length % 8)) % 8;
  const padded = Buffer.concat([priv, Buffer.from([1, 2, 3, 4, 5, 6, 7].slice(0, pad))]);
  priv.fill(0);
  priv = padded;
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), str('none'), str('none'), str(''), Buffer.from([0, 0, 0, 1]), str(publicBlob(raw)), str(priv)]);
  priv.fill(0);
  const b64 = body.toString('base64');
  body.fill(0);
  const lines = b64.match(/.{1,70}/g) ?? [];
  const pem = Buffer.from(`-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`);
  return pem;
}
