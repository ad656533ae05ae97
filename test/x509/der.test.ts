/**
 * The DER passtore handles itself (src/x509/der.ts, keys.ts): the SPKI built from a key's
 * JWK components is byte for byte OpenSSL's, and a PKCS#8 key unwrapped to its PKCS#1 or
 * SEC1 form loads as the same key the generic PKCS#8 decoder gives, for every key type
 * passtore accepts and the encodings OpenSSL writes (with and without the optional SEC1
 * fields); on mutated PKCS#8 bytes the two loaders accept and refuse alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { children, encode, tlv, unsignedInteger, whole } from '../../src/x509/der.js';
import { loadPrivateKeyDer, spkiDer, spkiSha256 } from '../../src/x509/keys.js';

const keys: Array<[string, KeyObject]> = [
  ['rsa-2048', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
  ['rsa-3072 e=3', generateKeyPairSync('rsa', { modulusLength: 3072, publicExponent: 3 }).privateKey],
  ['rsa-4096', generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey],
  ['ec-p256', generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey],
  ['ec-p384', generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey],
  ['ec-p521', generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey],
  ['ed25519 (left to OpenSSL)', generateKeyPairSync('ed25519').privateKey],
];

const pkcs8Of = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'der' });
const genericPkcs8 = (der: Buffer) => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
const sameKey = (a: KeyObject, b: KeyObject) => a.asymmetricKeyType === b.asymmetricKeyType && pkcs8Of(a).equals(pkcs8Of(b));

test("the SPKI built from a key's JWK components is the one OpenSSL exports, for private and public keys", () => {
  for (const [name, key] of keys) {
    const expected = createPublicKey(key).export({ type: 'spki', format: 'der' });
    assert.ok(spkiDer(key).equals(expected), `${name}: private key`);
    assert.ok(spkiDer(createPublicKey(key)).equals(expected), `${name}: public key`);
    assert.match(spkiSha256(key), /^[0-9a-f]{64}$/);
  }
});

test('a PKCS#8 key loads as the same key through the unwrapping path as through the generic decoder', () => {
  for (const [name, key] of keys) {
    const der = pkcs8Of(key);
    assert.ok(sameKey(loadPrivateKeyDer(der, 'pkcs8'), genericPkcs8(der)), name);
  }
});

test('SEC1 inside PKCS#8 without the public key, or with the curve given twice, loads as the same key', () => {
  for (const [name, key] of keys.filter(([n]) => n.startsWith('ec-'))) {
    const der = pkcs8Of(key);
    const top = children(der, whole(der));
    const inner = der.subarray(top[2]!.start, top[2]!.end);
    const fields = children(inner, whole(inner));
    const rebuild = (parts: Buffer[]) => encode(0x30, der.subarray(top[0]!.at, top[0]!.end), der.subarray(top[1]!.at, top[1]!.end), encode(0x04, encode(0x30, ...parts)));
    const bytes = (i: number) => inner.subarray(fields[i]!.at, fields[i]!.end);
    const curve = der.subarray(children(der, top[1]!)[1]!.at, children(der, top[1]!)[1]!.end);
    const withoutPublic = rebuild([bytes(0), bytes(1)]);
    const withCurve = rebuild([bytes(0), bytes(1), encode(0xa0, curve), ...fields.slice(2).map((_, i) => bytes(i + 2))]);
    for (const [what, variant] of [['without [1] publicKey', withoutPublic], ['with [0] parameters', withCurve]] as const) {
      assert.ok(sameKey(loadPrivateKeyDer(variant, 'pkcs8'), genericPkcs8(variant)), `${name}: ${what}`);
      const loaded = loadPrivateKeyDer(variant, 'pkcs8');
      assert.ok(loaded.equals(key) && spkiDer(loaded).equals(spkiDer(key)), `${name}: ${what}: the original key, its public key derived`);
    }
  }
});

test('mutated PKCS#8 bytes: the two loaders read the same keys and refuse the same bytes', () => {
  const seeds = keys.map(([, k]) => pkcs8Of(k));
  let both = 0;
  fc.assert(
    fc.property(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      (seed, flips, headerOnly) => {
        const b = Buffer.from(seed);
        // Flips in the first 40 bytes reach the wrapper's structure, the rest the key.
        for (const [i, v] of flips) b[headerOnly ? i % Math.min(40, b.length) : i % b.length] = v;
        let ours: KeyObject | undefined;
        let theirs: KeyObject | undefined;
        try {
          ours = loadPrivateKeyDer(b, 'pkcs8');
        } catch {
          // refused
        }
        try {
          theirs = genericPkcs8(b);
        } catch {
          // refused
        }
        // The fast path takes nothing the generic decoder refuses, and gives the same key.
        assert.equal(Boolean(ours), Boolean(theirs), `one loader read ${b.toString('hex')}, the other refused it`);
        if (ours && theirs) {
          both++;
          assert.ok(sameKey(ours, theirs));
        }
      },
    ),
    { numRuns: 1500 },
  );
  assert.ok(both > 0, 'some mutations still load');
});

test('DER reading refuses truncated and overlong lengths; integers are minimal and unsigned', () => {
  assert.throws(() => tlv(Buffer.from([0x30]), 0), /truncated/);
  assert.throws(() => tlv(Buffer.from([0x30, 0x05, 0x01]), 0), /truncated/);
  assert.throws(() => tlv(Buffer.from([0x30, 0x80]), 0), /bad DER length/);
  assert.throws(() => tlv(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1]), 0), /bad DER length/);
  assert.throws(() => whole(Buffer.from([0x05, 0x00, 0x00])), /trailing/);
  assert.deepEqual(unsignedInteger(Buffer.from([0, 0, 0x7f])), Buffer.from([2, 1, 0x7f]));
  assert.deepEqual(unsignedInteger(Buffer.from([0x80])), Buffer.from([2, 2, 0, 0x80]));
  assert.deepEqual(encode(0x04, Buffer.alloc(200)).subarray(0, 3), Buffer.from([0x04, 0x81, 200]));
});
