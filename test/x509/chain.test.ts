/**
 * The issuing chain kept with a certificate (src/x509/chain.ts), against real
 * certificates made by openssl: whatever subset of the CA certificates is delivered, in
 * whatever order, with a look-alike intermediate (same name, another key) among them, the
 * chain is exactly the delivered issuers in issuing order, each link verified, without the
 * self-signed root unless the root is the whole chain; everything else is reported unused.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parseCertificate } from '../../src/x509/certificate.js';
import { ChainPool, issues } from '../../src/x509/chain.js';
import { FixtureCa } from './fixture-ca.js';

const RUNS = Number(process.env.PASSTORE_FUZZ_RUNS ?? 200);

const ca = await FixtureCa.create();
const other = await FixtureCa.create();
after(() => {
  ca.remove();
  other.remove();
});

const parsed = (file: string) => parseCertificate(readFileSync(file));
const key = await ca.genKey('ec-p256');
const underIntermediate = parsed(await ca.signByIntermediate(await ca.request(key, '/CN=leaf-a.example.org', ['leaf-a.example.org'])));
const underRoot = parsed(await ca.sign(await ca.request(key, '/CN=leaf-b.example.org', ['leaf-b.example.org'])));
const root = parsed(ca.caCert);
const intermediateFile = (await ca.intermediate()).cert;
const intermediate = parsed(intermediateFile);
/** Another CA's intermediate with the same name as ours: it must never be taken. */
const lookAlike = parsed((await other.intermediate()).cert);
const otherRoot = parsed(other.caCert);
const candidates = { root, intermediate, lookAlike, otherRoot };
type Name = keyof typeof candidates;

test('fixtures: the look-alike has our intermediate\'s name but does not issue our certificate', () => {
  assert.equal(lookAlike.facts.subject, intermediate.facts.subject);
  assert.ok(issues(intermediate.cert, underIntermediate.cert));
  assert.ok(!issues(lookAlike.cert, underIntermediate.cert));
});

test('any subset and order of the delivered CA certificates: the chain is the issuing path present, root left out beside an intermediate', () => {
  fc.assert(
    fc.property(fc.shuffledSubarray(Object.keys(candidates) as Name[]), fc.boolean(), (names, viaIntermediate) => {
      const delivered = names.map((n) => candidates[n]);
      const pool = new ChainPool(delivered);
      const leaf = viaIntermediate ? underIntermediate : underRoot;
      const got = pool.chainOf(() => leaf.cert, leaf.facts);
      const has = (n: Name) => names.includes(n);
      let path: Name[];
      if (viaIntermediate) path = has('intermediate') ? (has('root') ? ['intermediate', 'root'] : ['intermediate']) : [];
      else path = has('root') ? ['root'] : [];
      const stored = viaIntermediate ? path.filter((n) => n !== 'root') : path;
      assert.deepEqual(got.subjects, stored.map((n) => candidates[n].facts.subject));
      assert.equal(got.pem, stored.length ? stored.map((n) => candidates[n].facts.pem).join('') : null);
      // Each stored link verifies: the first issues the certificate, each the one before.
      let current = leaf.cert;
      for (const b of got.pem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? []) {
        const c = new X509Certificate(b);
        assert.ok(issues(c, current));
        current = c;
      }
      // The rest is reported: never the look-alike nor the other CA in a chain.
      assert.deepEqual(pool.unused().map((c) => names[delivered.indexOf(c as (typeof delivered)[number])]).sort(), names.filter((n) => !path.includes(n)).sort());
    }),
    { numRuns: RUNS },
  );
});

test('an empty pool, or a certificate delivered twice: no chain, or the one copy', () => {
  assert.deepEqual(new ChainPool([]).chainOf(() => underRoot.cert, underRoot.facts), { pem: null, subjects: [] });
  const twice = new ChainPool([intermediate, parsed(intermediateFile)]);
  assert.equal(twice.size, 1);
  assert.deepEqual(twice.chainOf(() => underIntermediate.cert, underIntermediate.facts).subjects, [intermediate.facts.subject]);
});
