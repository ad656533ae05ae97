/**
 * The issuing chain stored with a certificate: of the CA certificates delivered with it
 * (the rest of a PEM bundle, PKCS#7 or PKCS#12 file, an ACME server's chain), those that
 * issue it, in issuing order: the certificate's issuer first, then that one's issuer, and
 * so on. Each link is proven: the issuer's name matches (checkIssued) and its signature
 * verifies with the issuer's public key. A delivered certificate that issues none of the
 * certificates stored is no part of any chain: the caller reports it, nothing stores it.
 *
 * The self-signed root ending a chain is left out, as a CA's intermediates are what a
 * server sends (certbot's chain.pem is what the ACME server sends after the certificate,
 * which for public CAs is the intermediates only): a client must hold the root already,
 * so sending it only costs bytes on every handshake. When the root is all the CA gave (a
 * site CA that issues directly), it is kept: it is then the only chain there is.
 */
import type { X509Certificate } from 'node:crypto';

/** A delivered CA certificate, with the names passtore read from it. */
export interface ChainCandidate {
  cert: X509Certificate;
  facts: { subject: string; issuer: string; pem: string };
}

/** The chain found for one certificate. */
export interface IssuingChain {
  /** PEM, the certificate's issuer first; null when nothing delivered issues it. */
  pem: string | null;
  /** The subjects stored, in order (for the report and showcrt). */
  subjects: string[];
}

const MAX_DEPTH = 8;
const norm = (pem: string) => (pem.endsWith('\n') ? pem : `${pem}\n`);

/** Whether `issuer` issued `cert`: names, key identifiers and key usage (OpenSSL's check), and the signature. */
export function issues(issuer: X509Certificate, cert: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** The CA certificates of one delivery, looked up by subject, remembering which were used. */
export class ChainPool {
  readonly #bySubject = new Map<string, ChainCandidate[]>();
  readonly #all: ChainCandidate[] = [];
  readonly #used = new Set<ChainCandidate>();

  constructor(candidates: Iterable<ChainCandidate>) {
    const seen = new Set<string>();
    for (const c of candidates) {
      if (seen.has(c.facts.pem)) continue;
      seen.add(c.facts.pem);
      this.#all.push(c);
      const list = this.#bySubject.get(c.facts.subject) ?? [];
      list.push(c);
      this.#bySubject.set(c.facts.subject, list);
    }
  }

  get size(): number {
    return this.#all.length;
  }

  /**
   * The issuing chain of `leaf` from this pool (see the file's comment); `leaf` is parsed
   * only when a candidate's subject is its issuer's name.
   */
  chainOf(leaf: () => X509Certificate, leafFacts: { subject: string; issuer: string; pem: string }): IssuingChain {
    const path: ChainCandidate[] = [];
    let current: { cert: () => X509Certificate; facts: ChainCandidate['facts'] } = { cert: leaf, facts: leafFacts };
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      if (path.length > 0 && current.facts.subject === current.facts.issuer && issues(current.cert(), current.cert())) break; // a root
      const candidates = this.#bySubject.get(current.facts.issuer);
      if (!candidates) break;
      const cert = current.cert();
      const next = candidates.find((c) => !path.includes(c) && c.facts.pem !== current.facts.pem && issues(c.cert, cert));
      if (!next) break;
      path.push(next);
      const n = next;
      current = { cert: () => n.cert, facts: n.facts };
    }
    for (const c of path) this.#used.add(c);
    const last = path.at(-1);
    // The root is left out unless it is the whole chain.
    const kept = path.length > 1 && last && last.facts.subject === last.facts.issuer && issues(last.cert, last.cert) ? path.slice(0, -1) : path;
    if (kept.length === 0) return { pem: null, subjects: [] };
    return { pem: kept.map((c) => norm(c.facts.pem)).join(''), subjects: kept.map((c) => c.facts.subject) };
  }

  /** The delivered CA certificates that issue none of the certificates chained so far. */
  unused(): ChainCandidate[] {
    return this.#all.filter((c) => !this.#used.has(c));
  }
}

