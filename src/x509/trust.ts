/**
 * Which CA issued a certificate, and whether passtore believes it. A certificate request
 * is public (it is mailed): anyone can have a certificate made for its key by a CA of
 * their own. So a fetched certificate is stored only when its chain verifies to a CA in
 * `[ca] trust` (a PEM bundle, or an OpenSSL hashed directory such as
 * /etc/grid-security/certificates) and it names nothing the request did not ask for.
 */
import { X509Certificate } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PasstoreError } from '../errors.js';
import { readRegularFile } from '../safe-file.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const MAX_BUNDLE = 8 * 1024 * 1024;

function certsIn(data: Buffer): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const m of data.toString('latin1').matchAll(PEM_CERT)) {
    try {
      out.push(new X509Certificate(m[0]));
    } catch {
      // A damaged entry in a bundle trusts nothing.
    }
  }
  return out;
}

/**
 * The trusted CA certificates of `[ca] trust`: every certificate of a PEM bundle, or of
 * the regular files of a directory (OpenSSL hashed names `*.0`…, `*.pem`, `*.crt`); links
 * in such a directory are the usual hashed names and are followed to regular files.
 * @throws PasstoreError('config') when nothing trusted can be read.
 */
export function loadTrust(path: string): X509Certificate[] {
  let isDir: boolean;
  try {
    isDir = lstatSync(path).isDirectory();
  } catch (e) {
    throw new PasstoreError('config', `[ca] trust ${path}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  const files = isDir ? readdirSync(path).filter((f) => /\.(\d+|pem|crt)$/.test(f)).map((f) => join(path, f)) : [path];
  const anchors: X509Certificate[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    let data: Buffer;
    try {
      data = readRegularFile(f, MAX_BUNDLE);
    } catch {
      continue; // a non-file or unreadable entry of a directory
    }
    for (const c of certsIn(data)) {
      if (c.ca && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        anchors.push(c);
      }
    }
  }
  if (anchors.length === 0) throw new PasstoreError('config', `[ca] trust ${path}: holds no CA certificate`);
  return anchors;
}

/** One line naming a certificate's issuer, OpenSSL style. */
export function issuerOf(cert: X509Certificate): string {
  return `/${cert.issuer.split('\n').filter(Boolean).join('/')}`;
}

const valid = (c: X509Certificate, at: Date) => Date.parse(c.validFrom) <= at.getTime() && at.getTime() <= Date.parse(c.validTo);

/**
 * Whether `leaf` chains to one of `anchors`, through CA certificates of `extra` (the
 * chain delivered with it): each link's issuer name matches and its signature verifies,
 * each intermediate is a CA and valid now. Returns the anchor's subject, or why not.
 */
export function verifyChain(leaf: X509Certificate, extra: X509Certificate[], anchors: X509Certificate[], at = new Date()): { ok: true; anchor: string } | { ok: false; why: string } {
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const anchor = anchors.find((a) => current.checkIssued(a) && current.verify(a.publicKey));
    if (anchor) {
      if (!valid(anchor, at)) return { ok: false, why: `its trusted CA ${oneLine(anchor.subject)} is not valid now` };
      return { ok: true, anchor: oneLine(anchor.subject) };
    }
    const next = extra.find((c) => c.ca && c !== current && current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) return { ok: false, why: `issued by ${issuerOf(current)}, which is not a trusted CA ([ca] trust)` };
    if (!valid(next, at)) return { ok: false, why: `its intermediate CA ${oneLine(next.subject)} is not valid now` };
    current = next;
  }
  return { ok: false, why: 'its chain is longer than 8 certificates' };
}

function oneLine(name: string): string {
  return `/${name.split('\n').filter(Boolean).join('/')}`;
}

/** The DNS names of a certificate that are not among `allowed` (the request's names). */
export function namesOutside(certNames: string[], allowed: string[]): string[] {
  const ok = new Set(allowed.map((n) => n.toLowerCase()));
  return certNames.filter((n) => !ok.has(n.toLowerCase()));
}

/**
 * The DNS names a renewal asks for besides the host's own: those of the request the vault
 * made for the current key (the operator's crtreq --san, or an earlier renewal), else of
 * the host's latest request; never names read from the old certificate alone, which may
 * have been issued by anyone.
 */
export function renewalNames(fqdn: string, keyId: number, requests: Array<{ keyId: number; sans: string; createdAt: string }>): string[] {
  const own = requests.find((r) => r.keyId === keyId) ?? [...requests].sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
  return own ? own.sans.split(',').filter((n) => n && n !== fqdn) : [];
}

/**
 * Shows who issued each certificate before the operator stores it (getcrt): with
 * `[ca] trust` set, one that does not verify to a trusted CA is stored only when the
 * operator confirms. Without `[ca] trust` there is nothing to verify against, and
 * nothing is shown or asked.
 * @throws PasstoreError('cancelled') when the operator declines.
 */
export async function confirmIssuers(
  certs: Array<{ cert: X509Certificate; facts: { subject: string; issuer: string } }>,
  chain: X509Certificate[],
  trustPath: string | undefined,
  out: { line(text: string): void },
  prompt: { confirm(question: string): Promise<boolean> },
): Promise<void> {
  const anchors = trustPath ? loadTrust(trustPath) : undefined;
  for (const c of certs) {
    if (!anchors) continue; // nothing to verify against (showcrt shows the issuer)
    const verdict = verifyChain(c.cert, chain, anchors);
    if (verdict.ok) {
      out.line(`${c.facts.subject}: issued by ${c.facts.issuer}, verified to the trusted CA ${verdict.anchor}`);
      continue;
    }
    out.line(`${c.facts.subject}: ${verdict.why}`);
    if (!(await prompt.confirm(`Store ${c.facts.subject}, issued by ${c.facts.issuer}, although it does not verify?`))) {
      throw new PasstoreError('cancelled', `nothing was stored: ${c.facts.subject} does not verify to a trusted CA`);
    }
  }
}
