/**
 * Certificates, parsed by Node's X509Certificate: the public metadata passtore keeps in
 * indexed cleartext columns (subject, issuer, serial, SANs, validity, fingerprints).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { tlv } from './der.js';
import { spkiSha256 } from './keys.js';

export interface CertFacts {
  pem: string;
  subject: string;
  issuer: string;
  serial: string;
  /** DNS names from subjectAltName. */
  sans: string[];
  notBefore: string;
  notAfter: string;
  fingerprintSha256: string;
  spkiSha256: string;
}

/** Parses one certificate (PEM or DER). */
export function parseCertificate(data: string | Buffer): { cert: X509Certificate; facts: CertFacts } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(data);
  } catch {
    throw new PasstoreError('mismatch', 'not a readable X.509 certificate');
  }
  const sans = (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  return {
    cert,
    facts: {
      pem: cert.toString(),
      subject: oneLineName(cert.subject),
      issuer: oneLineName(cert.issuer),
      serial: cert.serialNumber.toLowerCase(),
      sans,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(cert.validTo).toISOString(),
      fingerprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
      spkiSha256: certSpkiSha256(cert),
    },
  };
}

/** Node prints names one attribute a line; passtore shows them OpenSSL-style. */
function oneLineName(name: string): string {
  return `/${name.split('\n').filter(Boolean).join('/')}`;
}

/** Whether a certificate names a host (subjectAltName DNS, or CN when there are none). */
export function namesHost(cert: X509Certificate, fqdn: string): boolean {
  return cert.checkHost(fqdn, { wildcards: false, subject: 'default' }) !== undefined;
}

/** Whole days from now until `iso` (negative once passed). */
export function daysLeft(iso: string, now = Date.now()): number {
  return Math.floor((Date.parse(iso) - now) / 86_400_000);
}

/**
 * SHA-256 of a certificate's SubjectPublicKeyInfo, read straight from its DER (the seventh
 * field of tbsCertificate, after the optional version): the bytes exporting the key would
 * give, at a fraction of the cost. Falls back to exporting the key.
 */
export function certSpkiSha256(cert: X509Certificate): string {
  try {
    const der = cert.raw;
    const tbs = tlv(der, tlv(der, 0).start);
    let at = tbs.start;
    if (der[at] === 0xa0) at = tlv(der, at).end; // [0] version
    for (let i = 0; i < 5; i++) at = tlv(der, at).end; // serial, signature, issuer, validity, subject
    const spki = tlv(der, at);
    if (spki.tag !== 0x30) throw new Error('no SPKI');
    return createHash('sha256').update(der.subarray(at, spki.end)).digest('hex');
  } catch {
    return spkiSha256(cert.publicKey);
  }
}
