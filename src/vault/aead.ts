/**
 * AES-256-GCM with a fresh 96-bit nonce per write and associated data that binds each
 * ciphertext to its row. This is the only code that encrypts or decrypts secrets.
 * Stored form: 0x01 | nonce (12) | tag (16) | encrypted bytes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Ciphertext } from './ciphertext.js';

const FORMAT = 0x01;
const NONCE = 12;
const TAG = 16;
/** Bytes decrypted per update() call (see open()). */
const CHUNK = 7;

/** Associated data: an unambiguous encoding of the row identity a ciphertext belongs to. */
export function associatedData(...parts: Array<string | number>): Buffer {
  return Buffer.from(JSON.stringify(['passtore/1', ...parts]), 'utf8');
}

/** Encrypts `plaintext` under `key` bound to `ad`. */
export function seal(key: Buffer, plaintext: Buffer, ad: Buffer): Ciphertext {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG });
  cipher.setAAD(ad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Ciphertext.sealed(Buffer.concat([Buffer.from([FORMAT]), nonce, cipher.getAuthTag(), body]));
}

/**
 * Decrypts and authenticates; returns undefined when the ciphertext, its row binding or
 * the key is wrong (the caller names what failed). The returned buffer is the caller's
 * to wipe.
 *
 * The plaintext ends up in one buffer, handed back, or wiped when authentication
 * fails; every piece `update()` returns is wiped once copied in. Node's `update()` also
 * leaves a copy the caller never sees: it decrypts into a native block one byte longer
 * than the output (GCM's block size is 1), copies the output to an exact-size block and
 * frees the first without zeroing it. So the body is decrypted CHUNK bytes at a time:
 * a freed block of CHUNK + 1 <= 8 bytes has its first 8 (or 16) bytes overwritten by
 * malloc's free-list pointers at once (glibc tcache and fastbins), which leaves nothing
 * of the plaintext in it. The memory scan in test/hardening/memory.test.ts checks this.
 */
export function open(key: Buffer, sealed: Ciphertext, ad: Buffer): Buffer | undefined {
  const b = sealed.bytes;
  if (b.length < 1 + NONCE + TAG || b[0] !== FORMAT) return undefined;
  let plain: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, b.subarray(1, 1 + NONCE), { authTagLength: TAG });
    decipher.setAAD(ad);
    decipher.setAuthTag(b.subarray(1 + NONCE, 1 + NONCE + TAG));
    const body = b.subarray(1 + NONCE + TAG);
    plain = Buffer.alloc(body.length);
    for (let at = 0; at < body.length; at += CHUNK) {
      const part = decipher.update(body.subarray(at, at + CHUNK));
      part.copy(plain, at);
      part.fill(0);
    }
    const tail = decipher.final();
    if (tail.length === 0) return plain;
    // Not for GCM as OpenSSL does it; kept correct should that change.
    const whole = Buffer.concat([plain, tail]);
    plain.fill(0);
    tail.fill(0);
    return whole;
  } catch {
    plain?.fill(0);
    return undefined;
  }
}
