/**
 * The little DER passtore reads and writes itself, so that the hot paths of a bulk import
 * avoid OpenSSL 3's generic decoders and encoders (a PKCS#8 key costs ~370 µs to load
 * through them, an SPKI ~120 µs to export; the legacy key loaders and a JWK export take a
 * fraction of that). Only fixed shapes are handled: the elements of one SEQUENCE, a
 * PKCS#8 wrapper, an SPKI. Anything else is left to OpenSSL by the callers, which fall
 * back to it whenever these functions throw.
 */

/** One DER element: its tag, where its content starts, and where it ends. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  at: number;
  start: number;
  end: number;
}

/** Reads the element at `at`; throws on a truncated or non-DER (indefinite, overlong) length. */
export function tlv(der: Buffer, at: number): Tlv {
  if (at + 2 > der.length) throw new Error('truncated DER');
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tags are not read here');
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4 || start + n > der.length) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('truncated DER');
  return { tag, at, start, end: start + len };
}

/** The elements inside a constructed element (a SEQUENCE's fields), in order. */
export function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const t = tlv(der, at);
    if (t.end > parent.end) throw new Error('DER element overruns its parent');
    out.push(t);
    at = t.end;
  }
  return out;
}

/** The element at offset 0, required to span the whole buffer. */
export function whole(der: Buffer): Tlv {
  const t = tlv(der, 0);
  if (t.end !== der.length) throw new Error('trailing bytes after the DER element');
  return t;
}

/** The bytes of an element, tag and length included. */
export const bytesOf = (der: Buffer, t: Tlv): Buffer => der.subarray(t.at, t.end);

/** The content of an element. */
export const contentOf = (der: Buffer, t: Tlv): Buffer => der.subarray(t.start, t.end);

/** The DER length octets for a content of `n` bytes. */
export function lengthOf(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one element from its tag and content. */
export function encode(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthOf(body.length), body]);
}

/** A non-negative INTEGER from its big-endian magnitude (leading zeros dropped, a sign byte added). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return encode(0x02, m[0]! & 0x80 ? Buffer.from([0]) : Buffer.alloc(0), m);
}

export const TAG = { integer: 0x02, bitString: 0x03, octetString: 0x04, null: 0x05, oid: 0x06, sequence: 0x30, context0: 0xa0, context1: 0xa1 } as const;
