/**
 * Property test (fast-check) on the one reading path: whatever certificates and key a
 * file holds, the reader yields the same objects whether they come as PEM blocks, as DER
 * files one object each, as a PKCS#7 bundle (PEM or DER) beside the key, or as a PKCS#12
 * file (with a passphrase or without one). Containers are made by the real openssl
 * (argument vectors; passphrases by environment), from keys and certificates of each kind
 * made once by the fixture CA.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { readObjects, unlock, type FileContents } from '../../src/x509/pem.js';
import { FixtureCa, opensslBytes } from '../x509/fixture-ca.js';
import { v1Ca, selfSigned } from '../x509/fixture-formats.js';

const RUNS = Math.max(10, Math.round(Number(process.env.PASSTORE_FUZZ_RUNS ?? 2000) / 50));
const ca = await FixtureCa.create();
after(() => ca.remove());

interface Pair {
  key: string;
  cert: string;
}
const pairs: Pair[] = [];
for (const [i, type] of (['ec-p256', 'rsa-2048', 'ec-p256'] as const).entries()) {
  const key = await ca.genKey(type);
  pairs.push({ key, cert: await ca.issue(key, `prop-${i}.example.org`) });
}
const selfKey = await ca.genKey('ec-p256');
pairs.push({ key: selfKey, cert: await selfSigned(ca, selfKey, 'self-prop.example.org') });
const chain = [ca.caCert, (await v1Ca(ca)).cert];
const PASS = 'property passphrase';

const certDer = new Map<string, Buffer>();
for (const c of [...pairs.map((p) => p.cert), ...chain]) certDer.set(c, await ca.certDer(c));
const keyDer = new Map<string, Buffer>();
for (const p of pairs) keyDer.set(p.key, createPrivateKey(readFileSync(p.key)).export({ type: 'pkcs8', format: 'der' }));

/** What a reading gave, comparable: sorted fingerprints and key SPKI hashes, and any problem. */
function summary(results: FileContents[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    for (const o of r.objects) {
      if (o.kind === 'certificate') out.push(`cert ${o.facts.fingerprintSha256} ${o.facts.subject}`);
      else if (o.kind === 'key') out.push(`key ${o.facts.spkiSha256}`);
      else {
        const opened = unlock(o.locked, Buffer.from(PASS));
        out.push(...summary([opened]));
      }
    }
    for (const p of r.problems) out.push(`problem ${p}`);
  }
  return out.sort();
}

test('the same objects from PEM, DER, PKCS#7 (PEM and DER) and PKCS#12 (with and without a passphrase)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.option(fc.integer({ min: 0, max: pairs.length - 1 }), { nil: undefined }),
      fc.subarray([...pairs.map((p) => p.cert), ...chain], { minLength: 1 }),
      fc.boolean(),
      async (keyIndex, chosen, withPass) => {
        const key = keyIndex === undefined ? undefined : pairs[keyIndex]!;
        const certs = key && !chosen.includes(key.cert) ? [key.cert, ...chosen] : chosen;
        const pem = Buffer.from(certs.map((c) => readFileSync(c, 'utf8')).join('') + (key ? readFileSync(key.key, 'utf8') : ''));
        const fromPem = summary([readObjects(pem)]);
        const keyFile = key ? [readObjects(keyDer.get(key.key)!)] : [];
        const fromDer = summary([...certs.map((c) => readObjects(certDer.get(c)!)), ...keyFile]);
        assert.deepEqual(fromDer, fromPem, 'DER files one object each');
        for (const form of ['PEM', 'DER'] as const) {
          const args = ['crl2pkcs7', '-nocrl', '-outform', form];
          for (const c of certs) args.push('-certfile', c);
          assert.deepEqual(summary([readObjects(await opensslBytes(args)), ...keyFile]), fromPem, `PKCS#7 ${form}`);
        }
        const all = ca.path('all.pem');
        writeFileSync(all, pem);
        const args = ['pkcs12', '-export', '-in', all];
        if (!key) args.push('-nokeys');
        args.push(...(withPass ? ['-passout', 'env:FIXTURE_PASS'] : ['-passout', 'pass:', '-nomac', '-keypbe', 'NONE', '-certpbe', 'NONE']));
        assert.deepEqual(summary([readObjects(await opensslBytes(args, { ...process.env, FIXTURE_PASS: PASS }))]), fromPem, `PKCS#12 ${withPass ? 'with' : 'without'} a passphrase`);
      },
    ),
    { numRuns: RUNS },
  );
  console.log(`# containers: ${RUNS} selections read in five forms each`);
});
