/**
 * The per-entry HMACs of the summary of what is current (summary.ts), many at a time.
 *
 * Each tag is HMAC-SHA256 under the summary key of one entry's stamp text, read as a
 * 256-bit number; the digest is their sum mod 2^256. The tags are the same bytes as
 * `createHmac('sha256', key).update(text).digest()` (test/unit/entry-tags.test.ts checks
 * it against Node's on random texts), so summaries sealed before are checked as they were.
 * What differs is the cost: a check at 30,000 entries made 30,000 `createHmac` objects
 * (about 60–100 ms). Here the key's two padded blocks are hashed once into SHA-256
 * midstates, and each short stamp then costs two compressions in place, with no object
 * per entry (about a third of the time); the sum is kept in eight 32-bit limbs
 * (`TagSum`) instead of a BigInt per entry.
 *
 * The key itself is not kept: only its midstates, wiped by `wipe()`.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

/** Scratch for one compression (the message schedule). */
const W = new Int32Array(64);

/** One SHA-256 compression of the 16 words of `block` at `at` into the state `h`. */
function compress(h: Int32Array, block: Int32Array, at: number): void {
  for (let i = 0; i < 16; i++) W[i] = block[at + i]!;
  for (let i = 16; i < 64; i++) {
    const a = W[i - 15]!;
    const b = W[i - 2]!;
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, k = h[7]!;
  for (let i = 0; i < 64; i++) {
    const t1 = (k + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + k) | 0;
}

const MOD = 1n << 256n;

/**
 * A sum of tags mod 2^256, kept in eight 32-bit limbs (least significant first) held as
 * floats: a limb stays exact below 2^53, so the carries are made once every 2^20 tags.
 */
export class TagSum {
  #limbs = new Float64Array(8);
  #count = 0;

  /** Adds one tag (eight 32-bit words, least significant first), at `at` in `words`. */
  add(words: Uint32Array, at = 0): void {
    if (++this.#count >= 1 << 20) this.#carry();
    const l = this.#limbs;
    for (let i = 0; i < 8; i++) l[i]! += words[at + i]!;
  }

  #carry(): void {
    this.#count = 1;
    let carry = 0;
    for (let i = 0; i < 8; i++) {
      const v = this.#limbs[i]! + carry;
      this.#limbs[i] = v % 2 ** 32;
      carry = Math.floor(v / 2 ** 32);
    }
    // What carries out of the top limb is a multiple of 2^256: dropped.
  }

  /** The sum, mod 2^256. */
  value(): bigint {
    let n = 0n;
    for (let i = 7; i >= 0; i--) n = (n << 32n) + BigInt(this.#limbs[i]!);
    return n % MOD;
  }
}

/** HMAC-SHA256 under one key, for many short texts. */
export class EntryTagger {
  #inner: Int32Array;
  #outer: Int32Array;
  #state = new Int32Array(8);
  #bytes = new Uint8Array(512);
  #words = new Int32Array(128);
  #tail = new Int32Array(16);

  /** `key`: the HMAC key (at most 64 bytes; the summary key has 32). It is not kept. */
  constructor(key: Buffer) {
    if (key.length > 64) throw new Error('EntryTagger: a key longer than one block is not supported');
    const pad = new Uint8Array(64);
    const block = new Int32Array(16);
    const midstate = (byte: number) => {
      pad.fill(byte);
      for (let i = 0; i < key.length; i++) pad[i] = key[i]! ^ byte;
      for (let i = 0; i < 16; i++) block[i] = (pad[4 * i]! << 24) | (pad[4 * i + 1]! << 16) | (pad[4 * i + 2]! << 8) | pad[4 * i + 3]!;
      const h = new Int32Array(IV);
      compress(h, block, 0);
      return h;
    };
    this.#inner = midstate(0x36);
    this.#outer = midstate(0x5c);
    pad.fill(0);
    block.fill(0);
    W.fill(0);
  }

  /** Computes the tag of `text` into the state (big-endian words of the HMAC). */
  #tag(text: string): Int32Array {
    let n = text.length;
    let bytes = this.#bytes;
    let ascii = true;
    if (n + 72 <= bytes.length) {
      for (let i = 0; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        bytes[i] = c;
      }
    } else ascii = false;
    if (!ascii) {
      const utf8 = Buffer.from(text, 'utf8');
      n = utf8.length;
      if (n + 72 > bytes.length) this.#bytes = bytes = new Uint8Array(2 * (n + 72));
      bytes.set(utf8);
    }
    // Padding: 0x80, zeros, the bit length of the inner message (64 bytes of ipad, then text).
    const blocks = Math.ceil((n + 9) / 64);
    const end = blocks * 64;
    bytes[n] = 0x80;
    bytes.fill(0, n + 1, end);
    const bits = (64 + n) * 8;
    bytes[end - 4] = bits >>> 24;
    bytes[end - 3] = (bits >>> 16) & 0xff;
    bytes[end - 2] = (bits >>> 8) & 0xff;
    bytes[end - 1] = bits & 0xff;
    let words = this.#words;
    if (words.length < blocks * 16) this.#words = words = new Int32Array(blocks * 16);
    for (let i = 0; i < blocks * 16; i++) words[i] = (bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!;
    const h = this.#state;
    h.set(this.#inner);
    for (let j = 0; j < blocks; j++) compress(h, words, j * 16);
    // Outer: opad's block, then the inner hash (32 bytes) in one padded block.
    const t = this.#tail;
    t.set(h);
    t[8] = 0x80000000 | 0;
    t.fill(0, 9, 15);
    t[15] = (64 + 32) * 8;
    h.set(this.#outer);
    compress(h, t, 0);
    return h;
  }

  /**
   * The tag of `text` as eight 32-bit words, least significant first: written into `out`
   * at `at` when given (scratch, or a cache's pool), else into a new array.
   */
  tag(text: string, out = new Uint32Array(8), at = 0): Uint32Array {
    const h = this.#tag(text);
    for (let i = 0; i < 8; i++) out[at + i] = h[7 - i]! >>> 0;
    return out;
  }

  /** Wipes the key's midstates and the scratch space; the tagger is unusable after. */
  wipe(): void {
    this.#inner.fill(0);
    this.#outer.fill(0);
    this.#state.fill(0);
    this.#bytes.fill(0);
    this.#words.fill(0);
    this.#tail.fill(0);
    W.fill(0);
  }
}

/** The text of one entry's stamp as the summary's HMAC reads it. */
export function stampText(s: { fqdn: string; user: string; service: string; version: number; state: string }): string {
  return JSON.stringify([s.fqdn, s.user, s.service, s.version, s.state]);
}
