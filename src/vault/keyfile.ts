/**
 * The key file of a key-file slot: `passtore-keyfile 1`, a newline, 256 random bits in
 * base64, a newline. It is read and written as bytes only (a string cannot be wiped), and
 * read through a descriptor opened without following links and checked (private-file.ts).
 */
import { PasstoreError } from '../errors.js';
import { readPrivate } from '../private-file.js';

const HEADER = Buffer.from('passtore-keyfile 1\n');
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const KEY_BYTES = 32;
/** Base64 length of 32 bytes (with its one '=' of padding). */
const KEY_CHARS = 44;

/** Base64 of `bytes` into a new buffer, without making a string. */
function encode(bytes: Buffer): Buffer {
  const out = Buffer.alloc(Math.ceil(bytes.length / 3) * 4, '=');
  for (let i = 0, o = 0; i < bytes.length; i += 3, o += 4) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out[o] = B64.charCodeAt((n >> 18) & 63);
    out[o + 1] = B64.charCodeAt((n >> 12) & 63);
    if (i + 1 < bytes.length) out[o + 2] = B64.charCodeAt((n >> 6) & 63);
    if (i + 2 < bytes.length) out[o + 3] = B64.charCodeAt(n & 63);
  }
  return out;
}

/** Decodes exactly KEY_CHARS base64 bytes into 32 bytes, or undefined when malformed. */
function decodeKey(text: Buffer): Buffer | undefined {
  if (text.length !== KEY_CHARS || text[KEY_CHARS - 1] !== 0x3d) return undefined;
  const out = Buffer.alloc(KEY_BYTES + 1);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < KEY_CHARS - 1; i++) {
    const v = B64.indexOf(String.fromCharCode(text[i]!));
    if (v < 0) {
      out.fill(0);
      return undefined;
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  acc = 0;
  const key = Buffer.from(out.subarray(0, KEY_BYTES));
  out.fill(0);
  return o === KEY_BYTES ? key : undefined;
}

/** A key file's content for `key` (the caller wipes both). */
export function keyfileContent(key: Buffer): Buffer {
  const b64 = encode(key);
  const content = Buffer.concat([HEADER, b64, Buffer.from('\n')]);
  b64.fill(0);
  return content;
}

/** Reads a key file: it must be private to the running user and in passtore's format. Returns the 32-byte key (the caller wipes it). */
export function readKeyfile(path: string): Buffer {
  const bytes = readPrivate(path, { what: 'key file', code: 'locked', chmod: '400' }, 4096);
  try {
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0a) end--;
    const ok = bytes.subarray(0, HEADER.length).equals(HEADER);
    const key = ok ? decodeKey(bytes.subarray(HEADER.length, end)) : undefined;
    if (!key) throw new PasstoreError('locked', `key file ${path} is not a passtore key file`);
    return key;
  } finally {
    bytes.fill(0);
  }
}
