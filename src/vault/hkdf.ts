/**
 * HKDF-SHA256 (RFC 5869) for one 32-byte output, built on HMAC so the input key is never
 * copied into one of Node's KeyObjects: `hkdfSync` makes one of its key argument, and a
 * KeyObject keeps its copy until the garbage collector happens to free it, which a scan
 * of the process's memory found. HMAC keeps only its hashed state, freed and cleansed
 * once the digest is taken. Same output as `hkdfSync('sha256', ikm, salt, info, 32)`.
 */
import { createHmac } from 'node:crypto';

/** The 32-byte HKDF-SHA256 output for `ikm`, `salt`, `info` (the caller wipes it). */
export function hkdf32(ikm: Buffer, salt: Buffer, info: string): Buffer {
  // Extract: PRK = HMAC(salt, IKM). An empty salt is a block of zeros (RFC 5869 2.2).
  const prk = createHmac('sha256', salt.length > 0 ? salt : Buffer.alloc(32)).update(ikm).digest();
  try {
    // Expand, one block: T(1) = HMAC(PRK, info | 0x01).
    return createHmac('sha256', prk).update(info).update(Buffer.from([1])).digest();
  } finally {
    prk.fill(0);
  }
}
