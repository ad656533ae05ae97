/**
 * The summary's per-entry HMACs computed many at a time (src/vault/entry-tags.ts) are
 * Node's `createHmac('sha256', key)` of the same text, byte for byte, and their sum is
 * the sum of those HMACs mod 2^256: the digest of summaries sealed before is unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { EntryTagger, stampText, TagSum } from '../../src/vault/entry-tags.js';
import { digestOf, summaryKey } from '../../src/vault/summary.js';

const wordsOf = (mac: Buffer) => Uint32Array.from({ length: 8 }, (_, i) => mac.readUInt32BE(28 - 4 * i));

/** Random text: ASCII, or with characters of 2, 3 and 4 UTF-8 bytes, of 0 to `max` characters. */
function randomText(max: number): string {
  const pool = ['a', 'Z', '.', '-', '"', '\\', '\n', 'é', 'ß', '€', '中', '😀', '\u0000', '\u007f'];
  const n = randomInt(0, max + 1);
  const ascii = randomInt(0, 2) === 0;
  let s = '';
  for (let i = 0; i < n; i++) s += ascii ? String.fromCharCode(randomInt(0x20, 0x7f)) : pool[randomInt(0, pool.length)];
  return s;
}

test('each tag is createHmac-sha256 of the text (lengths around every padding boundary, ASCII and not, several keys)', () => {
  for (const keyLength of [32, 1, 0, 64, 63]) {
    const key = randomBytes(keyLength);
    const tagger = new EntryTagger(key);
    const scratch = new Uint32Array(8);
    // Every length from 0 to 300 bytes crosses the one-, two- and more-block paddings (55/56, 119/120 …).
    for (let n = 0; n <= 300; n++) {
      const text = 'x'.repeat(n);
      assert.deepEqual(tagger.tag(text, scratch), wordsOf(createHmac('sha256', key).update(text).digest()), `key ${keyLength} bytes, ${n} bytes`);
    }
    for (let i = 0; i < 2000; i++) {
      const text = randomText(i % 10 === 0 ? 700 : 80);
      assert.deepEqual(tagger.tag(text), wordsOf(createHmac('sha256', key).update(text, 'utf8').digest()), JSON.stringify(text));
    }
    tagger.wipe();
  }
  assert.throws(() => new EntryTagger(randomBytes(65)), /longer than one block/);
});

test('the sum of tags is the BigInt sum of the HMACs mod 2^256, also past the limbs\' carry every 2^20 tags', () => {
  const key = randomBytes(32);
  const tagger = new EntryTagger(key);
  const texts = Array.from({ length: 500 }, (_, i) => stampText({ fqdn: `wn-${i}.example.org`, user: 'root', service: i % 2 ? 'ssh' : 'ipmi', version: 1 + (i % 7), state: i % 5 ? 'set' : 'unset' }));
  let want = 0n;
  const sum = new TagSum();
  for (const t of texts) {
    want += BigInt(`0x${createHmac('sha256', key).update(t).digest('hex')}`);
    sum.add(tagger.tag(t));
  }
  assert.equal(sum.value(), want % (1n << 256n));

  // The largest tags, 2^20 + 3 times: the limbs must carry and wrap exactly.
  const max = new Uint32Array(8).fill(0xffffffff);
  const big = new TagSum();
  const n = (1 << 20) + 3;
  for (let i = 0; i < n; i++) big.add(max);
  assert.equal(big.value(), (BigInt(n) * ((1n << 256n) - 1n)) % (1n << 256n));
});

test('digestOf gives what the summary sealed before (one createHmac per entry, summed as BigInts)', () => {
  const auditKey = randomBytes(32);
  const key = summaryKey(auditKey, 'vault-id');
  const stamps = Array.from({ length: 300 }, (_, i) => ({ id: i, hostId: i, fqdn: `h-${i}.example.org`, user: i % 3 ? 'root' : 'nicedb', service: i % 3 ? 'ssh' : 'mysql', version: i, state: (i % 4 ? 'set' : 'unset') as 'set' | 'unset' }));
  let old = 0n;
  for (const s of stamps) old += BigInt(`0x${createHmac('sha256', key).update(JSON.stringify([s.fqdn, s.user, s.service, s.version, s.state])).digest('hex')}`);
  assert.equal(digestOf(key, stamps), old % (1n << 256n));
  assert.equal(digestOf(key, []), 0n);
});
