/**
 * A throwaway certificate authority for the certificate tests, made and driven with the
 * real `openssl` command (argument vectors, never a shell string): keys of each type,
 * requests, certificates signed now or with any validity window (`openssl ca` takes
 * explicit start and end dates, so expired certificates need no fake clock), and the
 * other encodings an operator meets (DER, PKCS#1/SEC1, encrypted PKCS#8).
 *
 * Also the helpers that search database bytes for private key material in any form.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';

const execFileP = promisify(execFile);

export type FixtureKeyType = 'rsa-1024' | 'rsa-2048' | 'rsa-4096' | 'ec-p256';

/** Runs openssl with an argument vector; returns stdout (stderr is in the error). */
export async function openssl(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; encoding?: 'utf8' | 'buffer' } = {}): Promise<string> {
  try {
    const { stdout } = await execFileP('openssl', args, { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** Runs openssl and returns its raw stdout bytes. */
export async function opensslBytes(args: string[], env?: NodeJS.ProcessEnv): Promise<Buffer> {
  const { stdout } = await execFileP('openssl', args, { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024, env: env ?? process.env });
  return stdout;
}

/** Whether openssl accepts a command (exit 0); the output when it does not. */
export async function opensslOk(args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await execFileP('openssl', args, { maxBuffer: 16 * 1024 * 1024 });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

export interface SignOptions {
  /** Where to write the certificate (PEM); default: a new file in the CA's directory. */
  out?: string;
  /** Validity in days from now (default 365). */
  days?: number;
  /** Explicit validity window, YYYYMMDDHHMMSSZ (uses `openssl ca`). */
  notBefore?: string;
  notAfter?: string;
  /** Overrides the request's subject (OpenSSL /A=b/C=d form). */
  subject?: string;
  /** Replaces the request's subjectAltName with these DNS names (else copied). */
  sans?: string[];
}

export class FixtureCa {
  readonly dir: string;
  readonly caKey: string;
  readonly caCert: string;
  #n = 0;

  private constructor(dir: string) {
    this.dir = dir;
    this.caKey = join(dir, 'ca', 'ca.key');
    this.caCert = join(dir, 'ca', 'ca.crt');
  }

  /** Makes the CA: an EC P-256 key and a self-signed CA certificate. */
  static async create(): Promise<FixtureCa> {
    const ca = new FixtureCa(mkdtempSync(join(tmpdir(), 'passtore-fixture-ca-')));
    mkdirSync(join(ca.dir, 'ca', 'issued'), { recursive: true });
    writeFileSync(join(ca.dir, 'ca', 'index.txt'), '');
    await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ca.caKey]);
    await openssl([
      'req', '-x509', '-new', '-key', ca.caKey, '-subj', '/DC=org/DC=example/O=Test/CN=Passtore Fixture CA', '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', ca.caCert,
    ]);
    writeFileSync(
      join(ca.dir, 'ca', 'ca.cnf'),
      [
        '[ca]',
        'default_ca = fixture',
        '[fixture]',
        `database = ${join(ca.dir, 'ca', 'index.txt')}`,
        `new_certs_dir = ${join(ca.dir, 'ca', 'issued')}`,
        `certificate = ${ca.caCert}`,
        `private_key = ${ca.caKey}`,
        'default_md = sha256',
        'policy = anything',
        'unique_subject = no',
        'copy_extensions = copy',
        'rand_serial = yes',
        '[anything]',
        'commonName = optional',
        '',
      ].join('\n'),
    );
    return ca;
  }

  /** A fresh path in the CA's work directory. */
  path(name: string): string {
    return join(this.dir, `${++this.#n}-${name}`);
  }

  /** A new private key (PKCS#8 PEM, unencrypted). */
  async genKey(type: FixtureKeyType, out = this.path(`${type}.key`)): Promise<string> {
    const args =
      type === 'ec-p256'
        ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out]
        : ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${type.slice(4)}`, '-out', out];
    await openssl(args);
    return out;
  }

  /** A certificate request for a key, with a subject and DNS names. */
  async request(key: string, subject: string, sans: string[], out = this.path('req.pem')): Promise<string> {
    const args = ['req', '-new', '-key', key, '-subj', subject, '-out', out];
    if (sans.length > 0) args.push('-addext', `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}`);
    await openssl(args);
    return out;
  }

  /** Signs a request as this CA; returns the certificate's path (PEM). */
  async sign(request: string, options: SignOptions = {}): Promise<string> {
    const out = options.out ?? this.path('cert.pem');
    let extfile: string | undefined;
    if (options.sans) {
      extfile = this.path('ext.cnf');
      writeFileSync(extfile, `[ext]\nsubjectAltName = ${options.sans.map((s) => `DNS:${s}`).join(',')}\nbasicConstraints = CA:FALSE\n`);
    }
    if (options.notBefore || options.notAfter) {
      const args = ['ca', '-batch', '-config', join(this.dir, 'ca', 'ca.cnf'), '-notext', '-preserveDN', '-in', request, '-out', out];
      if (options.notBefore) args.push('-startdate', options.notBefore);
      if (options.notAfter) args.push('-enddate', options.notAfter);
      else args.push('-days', String(options.days ?? 365));
      if (options.subject) args.push('-subj', options.subject);
      if (extfile) args.push('-extfile', extfile, '-extensions', 'ext');
      await openssl(args);
      return out;
    }
    const serial = `0x1${randomBytes(15).toString('hex')}`;
    const args = ['x509', '-req', '-in', request, '-CA', this.caCert, '-CAkey', this.caKey, '-set_serial', serial, '-days', String(options.days ?? 365), '-sha256', '-out', out];
    if (options.subject) args.push('-subj', options.subject);
    if (extfile) args.push('-extfile', extfile, '-extensions', 'ext');
    else args.push('-copy_extensions', 'copy');
    await openssl(args);
    return out;
  }

  #intermediate: { cert: string; key: string } | undefined;

  /** An intermediate CA issued by this one (made at the first call): its certificate and key files. */
  async intermediate(): Promise<{ cert: string; key: string }> {
    if (this.#intermediate) return this.#intermediate;
    const key = join(this.dir, 'ca', 'intermediate.key');
    const cert = join(this.dir, 'ca', 'intermediate.crt');
    const req = this.path('intermediate.req');
    const ext = this.path('intermediate.cnf');
    await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    await openssl(['req', '-new', '-key', key, '-subj', '/DC=org/DC=example/O=Test/CN=Passtore Fixture Intermediate CA', '-out', req]);
    writeFileSync(ext, '[ext]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n');
    await openssl(['x509', '-req', '-in', req, '-CA', this.caCert, '-CAkey', this.caKey, '-set_serial', `0x2${randomBytes(15).toString('hex')}`, '-days', '3000', '-sha256', '-extfile', ext, '-extensions', 'ext', '-out', cert]);
    this.#intermediate = { cert, key };
    return this.#intermediate;
  }

  /** Signs a request by the intermediate CA (its extensions copied); returns the certificate's path (PEM, the certificate alone). */
  async signByIntermediate(request: string, out = this.path('cert.pem')): Promise<string> {
    const { cert, key } = await this.intermediate();
    await openssl(['x509', '-req', '-in', request, '-CA', cert, '-CAkey', key, '-set_serial', `0x1${randomBytes(15).toString('hex')}`, '-days', '365', '-sha256', '-copy_extensions', 'copy', '-out', out]);
    return out;
  }

  /** A key's request and certificate in one step: CN and SAN name `fqdn` (and `sans`). */
  async issue(key: string, fqdn: string, options: SignOptions & { extraSans?: string[] } = {}): Promise<string> {
    const req = await this.request(key, `/DC=org/DC=example/O=Test/CN=${fqdn}`, [fqdn, ...(options.extraSans ?? [])]);
    return this.sign(req, options);
  }

  /** The key as DER in PKCS#8 (what the vault seals) and in its traditional form. */
  async keyDers(key: string): Promise<Buffer[]> {
    const pkcs8 = await opensslBytes(['pkey', '-in', key, '-outform', 'DER']);
    const traditional = await opensslBytes(['pkey', '-in', key, '-outform', 'DER', '-traditional']);
    return pkcs8.equals(traditional) ? [pkcs8] : [pkcs8, traditional];
  }

  /** The key as traditional PEM (PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY"). */
  async traditionalPem(key: string): Promise<string> {
    return openssl(['pkey', '-in', key, '-traditional']);
  }

  /** The key as encrypted PKCS#8 PEM (AES-256-CBC); the passphrase goes by environment. */
  async encryptedPem(key: string, passphrase: string): Promise<string> {
    return openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', key, '-passout', 'env:FIXTURE_KEY_PASS'], { env: { ...process.env, FIXTURE_KEY_PASS: passphrase } });
  }

  /** A certificate as DER bytes. */
  async certDer(cert: string): Promise<Buffer> {
    return opensslBytes(['x509', '-in', cert, '-outform', 'DER']);
  }

  /** SHA-256 fingerprint (lowercase hex) of a certificate, as passtore keeps it. */
  async fingerprint(cert: string): Promise<string> {
    return createHash('sha256').update(await this.certDer(cert)).digest('hex');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A PEM certificate with base64 characters flipped in the middle of its body, so
 * that openssl can no longer read it (checked; the flip moves until that holds).
 */
export async function corruptPem(pem: string, scratch: string): Promise<string> {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const lines = pem.trimEnd().split('\n');
  const body = lines.slice(1, -1).join('');
  for (let offset = 0; offset < body.length / 2; offset += 7) {
    for (const at of [Math.floor(body.length / 2) - offset, Math.floor(body.length / 2) + offset]) {
      const chars = body.split('');
      for (let i = at; i < at + 6 && i < chars.length; i++) {
        const c = chars[i]!;
        if (c === '=') continue;
        chars[i] = alphabet[(alphabet.indexOf(c) + 29) % 64]!;
      }
      const flipped = chars.join('');
      const text = `${lines[0]}\n${flipped.match(/.{1,64}/g)!.join('\n')}\n${lines[lines.length - 1]}\n`;
      writeFileSync(scratch, text);
      if (!(await opensslOk(['x509', '-in', scratch, '-noout'])).ok) return text;
    }
  }
  throw new Error('could not corrupt the certificate so that openssl refuses it');
}

/** Undoes mariadb-dump's string escaping, so that binary columns read as their bytes. */
export function unescapeDump(dump: string): Buffer {
  const map: Record<string, string> = { '0': '\0', n: '\n', r: '\r', Z: '\x1a', '\\': '\\', "'": "'", '"': '"', t: '\t', b: '\b' };
  return Buffer.from(dump.replace(/\\([0nrZ\\'"tb])/g, (_, c: string) => map[c]!), 'latin1');
}

/** The body lines of every PEM block in `text` (long enough to mean something). */
export function pemLinesOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/-----BEGIN [A-Z0-9 ]+-----\r?\n([\s\S]*?)-----END/g)) {
    for (const line of m[1]!.split(/\r?\n/)) if (line.length >= 40 && !line.includes(':')) out.push(line);
  }
  return out;
}

/** The secret numbers of a private key (EC d; RSA d, p, q, dp, dq, qi) as bytes. */
export function secretParts(key: KeyObject): Array<[string, Buffer]> {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string | undefined>;
  return (['d', 'p', 'q', 'dp', 'dq', 'qi'] as const).flatMap((n) => (jwk[n] ? [[n, Buffer.from(jwk[n]!, 'base64url')] as [string, Buffer]] : []));
}

/**
 * The PEM body lines of `der` that carry secret bytes: a line made only of the public
 * key and the fixed ASN.1 header (the tail of an EC key) is public and may well appear
 * inside the stored request or certificate, so it says nothing.
 */
export function secretPemLines(der: Buffer, parts: Array<[string, Buffer]>): string[] {
  const ranges = parts.flatMap(([, b]) => {
    const at = der.indexOf(b);
    return at < 0 ? [] : [[at, at + b.length] as const];
  });
  assert.ok(ranges.length > 0, 'the secret numbers are found in the DER');
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return lines.filter((line, i) => line.length >= 24 && ranges.some(([s, e]) => s < (i + 1) * 48 && e > i * 48));
}

/**
 * Asserts that no form of a private key is in `haystack`: its PKCS#8 and traditional DER
 * raw, in hex (either case) or in base64; any PEM line of them that carries secret bytes;
 * and each secret number alone, raw, in hex, base64 or base64url (as a JWK would hold it).
 */
export function assertNoKeyMaterial(haystack: Buffer, key: KeyObject, where: string, label: string): void {
  const text = haystack.toString('latin1');
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const traditional = key.export({ type: key.asymmetricKeyType === 'ec' ? 'sec1' : 'pkcs1', format: 'der' });
  const parts = secretParts(key);
  const checks: Array<[string, Buffer | string]> = [];
  for (const [name, der] of [['PKCS#8', pkcs8], ['traditional', traditional]] as const) {
    checks.push([`raw ${name} DER`, der], [`hex ${name} DER`, der.toString('hex')], [`HEX ${name} DER`, der.toString('hex').toUpperCase()], [`base64 ${name} DER`, der.toString('base64')]);
    for (const line of secretPemLines(der, parts)) checks.push([`a PEM line of the ${name} key`, line]);
  }
  for (const [name, b] of parts) {
    checks.push([`raw ${name}`, b], [`hex ${name}`, b.toString('hex')], [`HEX ${name}`, b.toString('hex').toUpperCase()], [`base64 ${name}`, b.toString('base64')], [`base64url ${name}`, b.toString('base64url')]);
  }
  for (const [form, needle] of checks) {
    const found = typeof needle === 'string' ? text.includes(needle) : haystack.includes(needle);
    assert.ok(!found, `${where} holds the private key of ${label} (${form})`);
  }
  pkcs8.fill(0);
  traditional.fill(0);
}

/** Reads a file's text. */
export const readText = (path: string): string => readFileSync(path, 'utf8');
