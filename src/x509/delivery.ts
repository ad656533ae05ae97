/**
 * Which certificates of a delivered file are hosts' certificates and which are its chain:
 * shared by getcrt and passtore-cron's fetchers, so that both decide alike. A certificate
 * whose public key matches a private key in the vault is a host's certificate, even when
 * it is self-signed and marked as a CA (what `openssl req -x509` makes); one that matches
 * no key is chain when it is a CA certificate, self-signed, or the issuer of another
 * certificate in the file (a version 1 CA certificate has no basicConstraints to say so).
 */
import type { X509Certificate } from 'node:crypto';
import type { KeyRow, Store } from '../storage/store.js';
import type { CertFacts } from './certificate.js';

export interface DeliveredCert {
  cert: X509Certificate;
  facts: CertFacts;
  /** The stored key it matches, if any. */
  key: KeyRow | undefined;
  /** A self-signed certificate marked as a CA, taken because it matches a key: said in the report. */
  selfSignedCa: boolean;
}

export interface Sorted {
  hosts: DeliveredCert[];
  chain: Array<{ facts: CertFacts; why: string }>;
}

/** Sorts a file's certificates into hosts' certificates and chain. */
export async function sortDelivered(certs: Array<{ cert: X509Certificate; facts: CertFacts }>, store: Pick<Store, 'getKeyBySpki'>): Promise<Sorted> {
  const out: Sorted = { hosts: [], chain: [] };
  for (const c of certs) {
    const key = await store.getKeyBySpki(c.facts.spkiSha256);
    const selfSigned = c.facts.subject === c.facts.issuer;
    if (key) {
      out.hosts.push({ ...c, key, selfSignedCa: c.cert.ca && selfSigned });
      continue;
    }
    const issuesAnother = certs.some((o) => o !== c && o.facts.issuer === c.facts.subject && o.facts.subject !== c.facts.subject && o.cert.checkIssued(c.cert));
    if (c.cert.ca) out.chain.push({ facts: c.facts, why: 'a CA certificate' });
    else if (issuesAnother) out.chain.push({ facts: c.facts, why: 'the issuer of another certificate in the file' });
    else if (selfSigned) out.chain.push({ facts: c.facts, why: 'self-signed, and matches no key in the vault' });
    else out.hosts.push({ ...c, key: undefined, selfSignedCa: false });
  }
  return out;
}
