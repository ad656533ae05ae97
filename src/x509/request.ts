/**
 * Certificate requests (PKCS#10), built with @peculiar/x509 for every key type: node-forge
 * can neither read nor sign with EC keys, and one library for all requests beats two.
 * The subject comes from `dn_template` with `{fqdn}` substituted; subjectAltName holds
 * the FQDN and any extra names.
 */
import { createPublicKey, webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { PasstoreError } from '../errors.js';
import { rfc4514 } from './dn.js';
import { loadPkcs8, type KeyFacts } from './keys.js';

let x509: typeof X509 | undefined;

/** @peculiar/x509, loaded on first use (it is large, and most commands make no request). */
async function library(): Promise<typeof X509> {
  if (!x509) {
    x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  }
  return x509;
}

/** The subject for a host: `/DC=org/O=Site/CN={fqdn}` (OpenSSL order) or RFC 4514 text. */
export function subjectFor(template: string, fqdn: string): string {
  return template.replaceAll('{fqdn}', fqdn);
}

function toName(x509: typeof X509, subject: string | Buffer): X509.Name {
  if (typeof subject !== 'string') return new x509.Name(new Uint8Array(subject));
  try {
    // RFC 4514 text is written most specific first: the reverse of the encoded order.
    if (!subject.startsWith('/')) return new x509.Name(new x509.Name(subject).toJSON().reverse());
    const rdns = subject
      .slice(1)
      .split(/(?<!\\)\//)
      .filter(Boolean)
      .map((part) => {
        const eq = part.indexOf('=');
        if (eq <= 0) throw new Error(part);
        return { [part.slice(0, eq).trim()]: [part.slice(eq + 1).replace(/\\\//g, '/')] };
      });
    return new x509.Name(rdns);
  } catch {
    throw new PasstoreError('config', `dn_template gives an unusable subject '${subject}'`);
  }
}

function algorithms(facts: KeyFacts): { importAlg: RsaHashedImportParams | EcKeyImportParams; signAlg: Algorithm | EcdsaParams } {
  if (facts.type.startsWith('rsa-')) {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { importAlg: alg, signAlg: alg };
  }
  const curve = { 'ec-p256': 'P-256', 'ec-p384': 'P-384', 'ec-p521': 'P-521' }[facts.type];
  if (!curve) throw new PasstoreError('policy', `no request can be built for a ${facts.type} key`);
  return { importAlg: { name: 'ECDSA', namedCurve: curve }, signAlg: { name: 'ECDSA', hash: curve === 'P-256' ? 'SHA-256' : 'SHA-384' } as EcdsaParams };
}

/**
 * Builds and signs a request for `subject` (a dn_template's text, or a Name's DER taken
 * from the current certificate); returns its PEM and its subject in RFC 4514 text.
 */
export async function buildRequest(pkcs8: Buffer, facts: KeyFacts, subject: string | Buffer, sans: string[]): Promise<{ pem: string; subject: string }> {
  const x509 = await library();
  const { importAlg, signAlg } = algorithms(facts);
  const spki = createPublicKey(loadPkcs8(pkcs8)).export({ type: 'spki', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlg, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, importAlg, true, ['verify']);
  const name = toName(x509, subject);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys: { privateKey, publicKey } as CryptoKeyPair,
    signingAlgorithm: signAlg,
    extensions: [new x509.SubjectAlternativeNameExtension(sans.map((value) => ({ type: 'dns' as const, value })))],
  });
  return { pem: csr.toString('pem'), subject: rfc4514(Buffer.from(name.toArrayBuffer())) };
}
