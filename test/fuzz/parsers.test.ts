/**
 * Property tests (fast-check) on every parser that takes outside input: names and specs,
 * patterns, remote files, command lines, the configuration, PEM and DER files, backup
 * copies, IMAP URLs, CA mails (the IMAP fetcher's MIME path) and the hosts' read-back
 * listings after a deploy. Whatever the input: no crash, no hang, and either a value or one
 * PasstoreError whose message is one line. The run count is printed for the summary.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { splitWords } from '../../src/args.js';
import { loadConfig } from '../../src/config.js';
import { PasstoreError } from '../../src/errors.js';
import { globToLike, globToRegExp, parseHost, parseHostPattern, parseRemoteFile, parseSpec, parseSpecPattern } from '../../src/names.js';
import { readObjects } from '../../src/x509/pem.js';
import { verifyCopy } from '../../src/backup.js';
import { certificatesInMail, parseImapUrl } from '../../src/fetchers/imap.js';
import { checkReadBack } from '../../src/remote/deploy.js';
import { FixtureCa } from '../x509/fixture-ca.js';

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

/** A CA's mail as a CA sends it: a text part, and the certificate attached (or inline). */
function caMail(certPem: string, how: 'attached' | 'inline' | 'der' | 'quoted-printable'): string {
  const b = 'b0undary';
  const head = ['From: CA <ca@ca.example.net>', 'To: passtore@example.org', 'Subject: your certificate', 'MIME-Version: 1.0'];
  if (how === 'inline') return [...head, 'Content-Type: text/plain', '', 'Here it is:', certPem, ''].join('\r\n');
  if (how === 'quoted-printable') {
    return [...head, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', certPem.replace(/=/g, '=3D').replace(/\n/g, '\r\n'), ''].join('\r\n');
  }
  const body = how === 'der' ? Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64') : Buffer.from(certPem);
  return [
    ...head,
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain',
    '',
    'Attached.',
    `--${b}`,
    `Content-Type: application/octet-stream; name="host.${how === 'der' ? 'crt' : 'pem'}"`,
    `Content-Disposition: attachment; filename="host.${how === 'der' ? 'crt' : 'pem'}"`,
    'Content-Transfer-Encoding: base64',
    '',
    ...(body.toString('base64').match(/.{1,76}/g) ?? []),
    `--${b}--`,
    '',
  ].join('\r\n');
}

test('mails: random and mutated CA mails give a subject and PEM certificate blocks, never a crash or a hang; intact ones give their certificate', async () => {
  const ca = await FixtureCa.create();
  try {
    const keyFile = join(dir, 'mail.key');
    writeFileSync(keyFile, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const certPem = new X509Certificate(readFileSync(await ca.issue(keyFile, 'mail.example.org'))).toString();
    const fingerprint = new X509Certificate(certPem).fingerprint256;
    const seeds = (['attached', 'inline', 'der', 'quoted-printable'] as const).map((how) => [how, Buffer.from(caMail(certPem, how))] as const);
    for (const [how, mail] of seeds) {
      const { pems } = await certificatesInMail(mail);
      assert.ok(pems.some((p) => new X509Certificate(p).fingerprint256 === fingerprint), `the ${how} certificate is found`);
    }
    // A subject with an encoded newline (RFC 2047) cannot forge a line in a report.
    const forged = Buffer.from(['Subject: =?UTF-8?Q?hello=0AFAILED:_forged_line?=', 'MIME-Version: 1.0', 'Content-Type: text/plain', '', 'no certificate', ''].join('\r\n'));
    assert.equal((await certificatesInMail(forged)).subject, 'hello FAILED: forged line');
    const PEM = /^-----BEGIN CERTIFICATE-----[\s\S]*-----END CERTIFICATE-----$/;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
          fc.string({ maxLength: 2000 }).map((t) => Buffer.from(t)),
          fc.tuple(fc.constantFrom(...seeds.map(([, m]) => m)), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 10 })).map(([seed, flips]) => {
            const b = Buffer.from(seed);
            for (const [i, v] of flips) b[i % b.length] = v;
            return b;
          }),
          fc.tuple(fc.constantFrom(...seeds.map(([, m]) => m)), fc.nat()).map(([seed, cut]) => seed.subarray(0, cut % (seed.length + 1))),
        ),
        async (mail) => {
          inputs++;
          let timer: NodeJS.Timeout | undefined;
          const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the mail parser hung (5 s)')), 5000)));
          try {
            const { subject, pems } = await Promise.race([certificatesInMail(mail), hang]);
            assert.equal(typeof subject, 'string');
            assert.doesNotMatch(subject, /[\p{Cc}\p{Cf}\u2028\u2029]/u, 'the subject is one printable line');
            for (const p of pems) assert.match(p, PEM);
            // Whatever was found goes through the same reader as a file's bytes.
            const r = readObjects(Buffer.from(pems.join('\n')));
            for (const p of r.problems) assert.ok(!p.includes('\n'));
          } finally {
            clearTimeout(timer);
          }
        },
      ),
      { numRuns: Math.min(RUNS, 1000) },
    );
  } finally {
    ca.remove();
  }
});

test("remote listings: the host's read-back output is accepted only when it names each file once, with the vault pair's hash, mode and owner", () => {
  const certPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const keyPem = Buffer.from('-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n');
  const sha = (d: Buffer | string) => createHash('sha256').update(d).digest('hex');
  const good = [`${sha(certPem)}  hostcert.pem`, `${sha(keyPem)}  hostkey.pem`, 'hostcert.pem 644 root', 'hostkey.pem 400 root'];
  assert.deepEqual(checkReadBack('h', [...good, 'backup=yes'].join('\n'), certPem, keyPem), { backup: true });
  assert.deepEqual(checkReadBack('h', good.join('\n'), certPem, keyPem), { backup: false });
  const noise = fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('backup=no', 'backup=yes', 'hostcert.pem.20261201T000000.000Z 644 root', `${sha('x')}  other.pem`));
  fc.assert(
    fc.property(
      fc.array(noise, { maxLength: 6 }),
      fc.shuffledSubarray(good, { minLength: 0, maxLength: 4 }),
      fc.option(fc.tuple(fc.nat({ max: 3 }), fc.constantFrom('dup', 'mode', 'owner', 'hash')), { nil: undefined }),
      (extra, kept, change) => {
        inputs++;
        const lines = [...kept];
        if (change && lines.length > 0) {
          const i = change[0] % lines.length;
          const l = lines[i]!;
          if (change[1] === 'dup') lines.push(l.replace(/[0-9a-f]{64}/, sha('other')).replace(/ (644|400) /, ' 600 '));
          else if (change[1] === 'mode') lines[i] = l.replace(/ (644|400) /, ' 640 ');
          else if (change[1] === 'owner') lines[i] = l.replace(/ root$/, ' nobody');
          else lines[i] = l.replace(/^[0-9a-f]/, (c) => (c === '0' ? '1' : '0'));
        }
        // Noise never names the two files as the checks read them.
        const clean = extra.filter((e) => !/(^|\s)host(cert|key)\.pem(\s|$)/.test(e));
        const text = [...clean, ...lines].join('\n');
        const changed = lines.length !== kept.length || lines.some((l, i) => l !== kept[i]);
        const shouldPass = kept.length === 4 && !changed;
        try {
          checkReadBack('h', text, certPem, keyPem);
          assert.ok(shouldPass, `accepted: ${JSON.stringify(text)}`);
        } catch (e) {
          assert.ok(e instanceof PasstoreError && e.code === 'mismatch' && !e.message.includes('\n'), String(e));
          assert.ok(!shouldPass, `refused: ${JSON.stringify(text)}: ${(e as Error).message}`);
        }
      },
    ),
    { numRuns: RUNS },
  );
});
