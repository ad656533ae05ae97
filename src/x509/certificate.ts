/**
 * Certificates, parsed by Node's X509Certificate: the public metadata passtore keeps in
 * indexed cleartext columns (subject, issuer, serial, SANs, validity, fingerprints).
 */
import { X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
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
      spkiSha256: spkiSha256(cert.publicKey),
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
