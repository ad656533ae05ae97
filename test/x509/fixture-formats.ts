/**
 * The containers and odd certificates an operator meets, made with the real `openssl`
 * command (argument vectors; passphrases by environment) and Node's crypto: PKCS#12 in
 * OpenSSL 3's default (PBES2, AES-256, SHA-256 MAC), -legacy (RC2/3DES, SHA-1) and
 * password-less forms; PKCS#7 bundles in PEM and DER; PBES1 (MD5-DES) keys; an RSA key
 * whose private exponent is wrong, an EC key whose scalar is; Globus and other grid subjects.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { openssl, opensslBytes, type FixtureCa } from './fixture-ca.js';

const withPass = (pass: string) => ({ env: { ...process.env, FIXTURE_PASS: pass } });

/** A PKCS#12 file of a key, its certificate and a chain (DER bytes). */
export async function pkcs12(ca: FixtureCa, key: string, cert: string, options: { pass?: string; legacy?: boolean; chain?: string[] } = {}): Promise<Buffer> {
  const out = ca.path('bundle.p12');
  const args = ['pkcs12', '-export', '-inkey', key, '-in', cert, '-out', out];
  for (const c of options.chain ?? []) args.push('-certfile', c);
  if (options.legacy) args.push('-legacy');
  if (options.pass === undefined) args.push('-passout', 'pass:', '-nomac', '-keypbe', 'NONE', '-certpbe', 'NONE');
  else args.push('-passout', 'env:FIXTURE_PASS');
  await openssl(args, withPass(options.pass ?? ''));
  return readFileSync(out);
}

/** A PKCS#7 certs-only bundle of certificates (PEM text, or DER bytes). */
export async function pkcs7(ca: FixtureCa, certs: string[], form: 'PEM' | 'DER'): Promise<Buffer> {
  const args = ['crl2pkcs7', '-nocrl', '-outform', form];
  for (const c of certs) args.push('-certfile', c);
  return opensslBytes(args);
}

/** A key encrypted with PBES1 MD5-DES (PKCS#8 PEM), as `openssl pkcs8 -v1 PBE-MD5-DES` writes it. */
export async function pbes1Key(key: string, pass: string, scheme = 'PBE-MD5-DES'): Promise<string> {
  return openssl(['pkcs8', '-topk8', '-v1', scheme, '-provider', 'legacy', '-provider', 'default', '-in', key, '-passout', 'env:FIXTURE_PASS'], withPass(pass));
}

/** An RSA key (PKCS#8 PEM) whose public half is the key's but whose private exponent d is wrong. */
export function brokenRsa(keyPem: string): string {
  const jwk = createPrivateKey(keyPem).export({ format: 'jwk' });
  const d = Buffer.from(jwk.d!, 'base64url');
  d[d.length - 1]! ^= 0x02;
  return createPrivateKey({ key: { ...jwk, d: d.toString('base64url') }, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }) as string;
}

/**
 * An EC key whose embedded public point is the key's but whose private scalar d is wrong
 * (`openssl ec -check`: "invalid private key"), as SEC1 or PKCS#8 PEM: the point a broken
 * key carries is right, so only d·G can tell.
 */
export function brokenEc(keyPem: string, type: 'sec1' | 'pkcs8'): string {
  const jwk = createPrivateKey(keyPem).export({ format: 'jwk' });
  const d = Buffer.from(jwk.d!, 'base64url');
  d[d.length - 1]! ^= 0x02;
  return createPrivateKey({ key: { ...jwk, d: d.toString('base64url') }, format: 'jwk' }).export({ type, format: 'pem' }) as string;
}

/** A certificate with an explicit subject and DNS names (none: no subjectAltName), signed by the CA. */
export async function certWith(ca: FixtureCa, key: string, subject: string, sans: string[], options: { criticalSan?: boolean } = {}): Promise<string> {
  const req = ca.path('req.pem');
  await openssl(['req', '-new', '-key', key, '-subj', subject || '/', '-out', req]);
  const out = ca.path('cert.pem');
  const ext = ca.path('ext.cnf');
  const lines = ['[ext]', 'basicConstraints = CA:FALSE'];
  if (sans.length) lines.push(`subjectAltName = ${options.criticalSan ? 'critical,' : ''}${sans.map((s) => `DNS:${s}`).join(',')}`);
  writeFileSync(ext, `${lines.join('\n')}\n`);
  await openssl(['x509', '-req', '-in', req, '-CA', ca.caCert, '-CAkey', ca.caKey, '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`, '-days', '365', '-sha256', '-extfile', ext, '-extensions', 'ext', '-out', out]);
  return out;
}

/** A self-signed certificate as `openssl req -x509` makes it (CA:TRUE by default). */
export async function selfSigned(ca: FixtureCa, key: string, fqdn: string): Promise<string> {
  const out = ca.path('self.pem');
  await openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${fqdn}`, '-addext', `subjectAltName=DNS:${fqdn}`, '-days', '365', '-out', out]);
  return out;
}

/** A version 1 CA certificate (no extensions at all), self-signed. */
export async function v1Ca(ca: FixtureCa): Promise<{ cert: string; key: string }> {
  const key = await ca.genKey('ec-p256');
  const req = ca.path('v1.req');
  await openssl(['req', '-new', '-key', key, '-subj', '/O=Old Grid/CN=Old Grid CA v1', '-out', req]);
  const cert = ca.path('v1.pem');
  await openssl(['x509', '-req', '-in', req, '-key', key, '-days', '365', '-out', cert]);
  return { cert, key };
}
