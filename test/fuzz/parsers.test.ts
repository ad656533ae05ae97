/**
 * Property tests (fast-check) on every parser that takes outside input: names and specs,
 * patterns, remote files, command lines, the configuration, PEM and DER files, backup
 * copies, IMAP URLs. Whatever the input: no crash, no hang, and either a value or one
 * PasstoreError whose message is one line. The run count is printed for the summary.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { splitWords } from '../../src/args.js';
import { loadConfig } from '../../src/config.js';
import { PasstoreError } from '../../src/errors.js';
import { globToLike, globToRegExp, parseHost, parseHostPattern, parseRemoteFile, parseSpec, parseSpecPattern } from '../../src/names.js';
import { readObjects } from '../../src/x509/pem.js';
import { verifyCopy } from '../../src/backup.js';
import { parseImapUrl } from '../../src/fetchers/imap.js';

const RUNS = Number(process.env.PASSTORE_FUZZ_RUNS ?? 2000);
let inputs = 0;
const dir = mkdtempSync(join(tmpdir(), 'passtore-fuzz-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
  console.log(`# fuzz: ${inputs} inputs tried, every one answered with a value or one clear error`);
});

/** Runs `fn`; it may return or throw a one-line PasstoreError, nothing else. */
function clean(fn: () => unknown): void {
  inputs++;
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PasstoreError, `not a PasstoreError: ${(e as Error)?.stack ?? e}`);
    assert.ok(!e.message.includes('\n'), 'the message is one line');
    assert.ok(e.message.length < 400, 'the message is short');
  }
}

const hostish = fc.stringMatching(/^[a-zA-Z0-9.*?@:;$()\/\\_%!-]{0,80}$/);
const anything = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 100 }), hostish);

test('names, specs, patterns and remote files', () => {
  fc.assert(
    fc.property(anything, fc.option(fc.constantFrom('example.org', 'site.test'), { nil: undefined }), (input, domain) => {
      clean(() => parseHost(input, domain));
      clean(() => parseHostPattern(input, domain));
      clean(() => parseSpec(input, domain));
      clean(() => parseSpecPattern(input, domain));
      clean(() => parseRemoteFile(input, domain));
      clean(() => parseImapUrl(input));
    }),
    { numRuns: RUNS },
  );
});

test('a parsed host is always a valid lowercase FQDN; a pattern never lets SQL wildcards through', () => {
  fc.assert(
    fc.property(hostish, (input) => {
      inputs++;
      try {
        const h = parseHost(input, 'example.org');
        assert.match(h, /^[a-z0-9.-]+$/);
        assert.ok(h.length <= 253);
      } catch (e) {
        assert.ok(e instanceof PasstoreError);
      }
      try {
        const p = parseHostPattern(input, 'example.org');
        const like = globToLike(p.glob);
        // Every % or _ in the LIKE pattern comes from * or ?; a literal one is escaped.
        const unescaped = like.replace(/!./g, '');
        assert.equal((unescaped.match(/[%_]/g) ?? []).length, (p.glob.match(/[*?]/g) ?? []).length, `${p.glob} -> ${like}`);
        assert.ok(globToRegExp(p.glob) instanceof RegExp);
      } catch (e) {
        assert.ok(e instanceof PasstoreError);
      }
    }),
    { numRuns: RUNS },
  );
});

test('command lines split without crashing', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (line) => clean(() => splitWords(line))),
    { numRuns: RUNS },
  );
});

test('configuration files: any text loads or gives one error naming the file', () => {
  let n = 0;
  const line = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.tuple(fc.constantFrom('domain', 'db', 'crt_ttl', 'notify_days', 'idle_lock', 'key_type', 'dn_template', 'admin_email', 'x', 'crt_TTL', 'dbuser', 'dbname'), fc.string({ maxLength: 40 })).map(([k, v]) => `${k} = ${v}`),
    fc.constantFrom('[smtp]', '[network]', '[ca]', '[schedule]', '[bogus]', '['),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
      const file = join(dir, `c${n++}.conf`);
      writeFileSync(file, lines.join('\n'));
      inputs++;
      try {
        loadConfig(file);
      } catch (e) {
        assert.ok(e instanceof PasstoreError, String((e as Error)?.stack));
        assert.ok(e.message.startsWith(file), e.message);
        assert.ok(!e.message.includes('\n'));
      }
    }),
    { numRuns: Math.min(RUNS, 1500) },
  );
});

test('PEM and DER: random and mutated certificates and keys never crash the reader', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  const certPem = '-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUXWzuwsP1AbvwmHr4yBaAqGpvfTUwCgYIKoZIzj0EAwIw\nETEPMA0GA1UEAwwGdGVzdGNhMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAwMDAw\nMFowETEPMA0GA1UEAwwGdGVzdGNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END CERTIFICATE-----\n';
  const seeds = [Buffer.from(pem), der, Buffer.from(certPem), Buffer.from(pem + certPem)];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
        fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })).map(([seed, flips]) => {
          const b = Buffer.from(seed);
          for (const [i, v] of flips) if (b.length) b[i % b.length] = v;
          return b;
        }),
        fc.tuple(fc.constantFrom(...seeds), fc.nat()).map(([seed, cut]) => seed.subarray(0, cut % (seed.length + 1))),
      ),
      (data) => {
        inputs++;
        const r = readObjects(data);
        assert.ok(Array.isArray(r.objects) && Array.isArray(r.problems));
        for (const p of r.problems) assert.ok(!p.includes('\n'));
      },
    ),
    { numRuns: RUNS },
  );
});

test('backup copies: a damaged manifest or snapshot is refused naming the file', () => {
  let n = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.uint8Array({ maxLength: 400 }), (manifest, snapshot) => {
      const copy = join(dir, `copy${n++}`);
      mkdirSync(copy);
      writeFileSync(join(copy, 'manifest.json'), manifest);
      writeFileSync(join(copy, 'snapshot.ptb'), snapshot);
      inputs++;
      assert.throws(() => verifyCopy(copy), (e: unknown) => e instanceof PasstoreError && e.message.startsWith(copy) && !e.message.includes('\n'));
    }),
    { numRuns: Math.min(RUNS, 500) },
  );
});
