/**
 * Certificates, parsed by Node's X509Certificate: the public metadata passtore keeps in
 * indexed cleartext columns (subject, issuer, serial, SANs, validity, fingerprints).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { tlv } from './der.js';
import { certificateDns, commonNames, hostOfCommonName } from './dn.js';
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
  let names: { subject: string; issuer: string };
  try {
    names = certificateDns(cert);
  } catch {
    throw new PasstoreError('mismatch', 'not a readable X.509 certificate (its names do not parse)');
  }
  return {
    cert,
    facts: {
      pem: cert.toString(),
      subject: names.subject,
      issuer: names.issuer,
      serial: cert.serialNumber.toLowerCase(),
      sans: dnsNames(cert),
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(cert.validTo).toISOString(),
      fingerprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
      spkiSha256: certSpkiSha256(cert),
    },
  };
}

/** The DNS names of subjectAltName, lower case, in their order. */
function dnsNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
}

/**
 * Whether a certificate names a host: a subjectAltName DNS name, or, when it has none, a
 * common name wherever it stands in the subject, plain or Globus-style `host/FQDN`.
 */
export function namesHost(cert: X509Certificate, fqdn: string): boolean {
  if (cert.checkHost(fqdn, { wildcards: false, subject: 'default' }) !== undefined) return true;
  if (dnsNames(cert).length > 0) return false;
  return commonNames(cert).some((cn) => hostOfCommonName(cn) === fqdn.toLowerCase());
}

/**
 * The hosts a certificate is for, best first: the host its subject's common name names
 * (plain or `host/FQDN`, most specific CN first), then its DNS names in order; each one
 * the certificate itself names (namesHost). importcert takes the first one already in the
 * vault, else the first.
 */
export function hostsOfCertificate(cert: X509Certificate, facts: Pick<CertFacts, 'sans'>): string[] {
  const out: string[] = [];
  const add = (h: string | undefined) => {
    if (h && !out.includes(h) && namesHost(cert, h)) out.push(h);
  };
  for (const cn of safeCommonNames(cert)) add(hostOfCommonName(cn));
  for (const s of facts.sans) add(hostOfCommonName(s));
  return out;
}

function safeCommonNames(cert: X509Certificate): string[] {
  try {
    return commonNames(cert);
  } catch {
    return [];
  }
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
