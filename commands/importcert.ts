import { defineCommand, type Context, type Input } from '../src/command.js';
import { step } from '../src/faults.js';
import { Cancel, cancelledBy } from '../src/cancel.js';
import { PasstoreError } from '../src/errors.js';
import { DEFAULT_SERVICE, DEFAULT_USER } from '../src/names.js';
import { now } from '../src/targets.js';
import { acceptCertificate, storeKey } from '../src/x509/cert-store.js';
import { namesHost } from '../src/x509/certificate.js';
import { ChainPool } from '../src/x509/chain.js';
import { loadTrust, verifyChain } from '../src/x509/trust.js';
import { pairByKey, scanDirectory, unlockLocked, wipeScan, type FileProblem, type FoundCert, type Pair, type Scan } from '../src/x509/import.js';
import { Passphrases } from '../src/x509/passphrases.js';

export default defineCommand({
  name: 'importcert',
  summary: 'Import a directory of host certificates and keys, paired by public key',
  description:
    'Reads every file below DIR (PEM with any number of objects per file, DER, PKCS#7 bundles, PKCS#12 files), pairs certificates with private keys by public key whatever the file names, and adds only valid pairs, all in one transaction. Each key is proven (its private half checked against its public half) before it is stored. A certificate\'s host is the one its subject\'s CN names (a plain FQDN or Globus host/FQDN), else its first DNS name; one of its names already in the vault is preferred. A host new to the vault is added with a placeholder root password marked unset (list shows it; set it with update --local, since the host cannot be logged in to with an unset password). A certificate whose key is already in the vault is stored too. Encrypted keys and PKCS#12 files ask for their passphrase (an empty answer skips the file; after the first one that works, it may be kept for the other files). Expired certificates are refused unless --force. CA certificates found (chain files) are no host\'s: those that issue a stored certificate, each signature verified, are stored with it as its issuing chain (the issuer first; a self-signed root only when it is the whole chain). With [ca] trust configured, certificates whose chain does not verify to a trusted CA are listed with their issuer and imported only when you confirm. Reports the pairs added, and every file not imported with its reason; the exit status is 1 when any file was not imported. Ctrl-C cancels it at any point before the pairs are committed, all together, at the end: "importcert: cancelled; nothing stored".',
  usage: 'importcert DIR [--force]',
  args: [{ name: 'dir', kind: 'path' }],
  flags: { force: { type: 'boolean', description: 'store expired certificates too' } },
  needs: ['unlocked'],
  audited: true,
  async run(ctx, input) {
    const dir = input.word('dir');
    // Ctrl-C stops the reading, the opening, the checks or the storing; everything is
    // stored in one transaction at the end, so a cancel before it commits stores nothing.
    try {
      const scan = await scanDirectory(dir, { progress: (n) => ctx.out.progress(`reading ${dir}: ${n} files`), signal: input.signal });
      try {
        await importScan(ctx, input, dir, scan);
      } finally {
        wipeScan(scan);
      }
    } catch (e) {
      if (cancelledBy(e, input.signal)) throw new PasstoreError('cancelled', 'cancelled; nothing stored');
      throw e;
    }
  },
});

/** Pairs, checks and stores what the scan found, in one transaction, and reports. */
async function importScan(ctx: Context, input: Input, dir: string, scan: Scan): Promise<void> {
  const cancel = new Cancel(input.signal);
  if (scan.files === 0 && scan.unreadable.length === 0) {
    ctx.out.line(`${dir}: no files; nothing to import`);
    return;
  }
  const passphrases = new Passphrases(ctx.scripted ? undefined : ctx.prompt);
  try {
    await unlockLocked(scan, passphrases, input.signal);
  } finally {
    passphrases.close();
  }
  const { pairs, skipped, selfSignedCas, lonelyCerts, unmatched } = pairByKey(scan, { force: input.flag('force') });
  const problems: FileProblem[] = [...scan.unreadable, ...unmatched];

  // Certificates already stored, or whose key is already in the vault, are decided now,
  // so that the transaction below only fails on the unexpected.
  const fresh: Pair[] = [];
  for (const p of pairs) {
    await cancel.point();
    const stored = await ctx.store.getKeyBySpki(p.key.facts.spkiSha256);
    if (await ctx.store.getCertificateByFingerprint(p.cert.facts.fingerprintSha256)) problems.push({ file: p.cert.file, reason: `already in the vault (${p.host})` });
    else if (stored && !namesHost(p.cert.cert, stored.fqdn)) problems.push({ file: p.cert.file, reason: `its private key belongs to ${stored.fqdn}, which the certificate does not name` });
    else fresh.push(stored ? { ...p, host: stored.fqdn } : { ...p, host: await hostInVault(ctx, p) });
  }
  const forStoredKeys: FoundCert[] = [];
  for (const c of lonelyCerts) {
    await cancel.point();
    const key = await ctx.store.getKeyBySpki(c.facts.spkiSha256);
    if (!key) problems.push({ file: c.file, reason: 'certificate without its private key' });
    else if (await ctx.store.getCertificateByFingerprint(c.facts.fingerprintSha256)) problems.push({ file: c.file, reason: `already in the vault (${key.fqdn})` });
    else if (!namesHost(c.cert, key.fqdn)) problems.push({ file: c.file, reason: `its private key belongs to ${key.fqdn}, which the certificate does not name` });
    else forStoredKeys.push(c);
  }

  // With [ca] trust, certificates whose chain does not verify are listed with their
  // issuer and imported only when the operator confirms.
  if (ctx.config.ca.trust) {
    const anchors = loadTrust(ctx.config.ca.trust);
    const chain = scan.certs.filter((c) => c.cert.ca).map((c) => c.cert);
    const verifies = (c: FoundCert) => verifyChain(c.cert, chain, anchors).ok;
    const doubtful = [...fresh.map((p) => p.cert), ...forStoredKeys].filter((c) => !verifies(c));
    if (doubtful.length > 0) {
      ctx.out.table(['FILE', 'ISSUER (NOT A TRUSTED CA)'], doubtful.map((c) => [c.file, c.facts.issuer]));
      if (!(await ctx.prompt.confirm(`${doubtful.length} certificate${doubtful.length === 1 ? '' : 's'} above do${doubtful.length === 1 ? 'es' : ''} not verify to a trusted CA ([ca] trust); import anyway?`))) {
        for (const c of doubtful) problems.push({ file: c.file, reason: `issued by ${c.facts.issuer}, which is not a trusted CA` });
        const keep = <T>(list: T[], cert: (x: T) => FoundCert) => list.splice(0, list.length, ...list.filter((x) => !doubtful.includes(cert(x))));
        keep(fresh, (p) => p.cert);
        keep(forStoredKeys, (c) => c);
      }
    }
  }

  // The CA certificates found (chain files): each stored certificate keeps those that issue it as its chain.
  const hostCerts = new Set<FoundCert>([...pairs.map((p) => p.cert), ...lonelyCerts]);
  const pool = new ChainPool(scan.certs.filter((c) => c.ca && !hostCerts.has(c)));
  let chained = 0;
  const newHosts: string[] = [];
  let added = 0;
  await ctx.change(async (tx) => {
    for (const p of fresh) {
      // A cancel here rolls the whole transaction back: no pair is left half stored.
      await cancel.point();
      if (++added % 250 === 0) ctx.out.progress(`storing: ${added} of ${fresh.length} pairs`);
      let host = await tx.getHost(p.host);
      const freshHost = !host;
      if (!host) {
        host = await tx.addHost({ fqdn: p.host, address: null, port: 22, createdAt: now() });
        await tx.insertEntry({ hostId: host.id, user: DEFAULT_USER, service: DEFAULT_SERVICE, version: 1, state: 'unset', secretCiphertext: null, updatedAt: now(), updatedBy: ctx.operator });
        newHosts.push(p.host);
      }
      if (!(await tx.getKeyBySpki(p.key.facts.spkiSha256))) {
        await storeKey(tx, ctx.vault, host, p.key.pkcs8, p.key.facts, { state: 'pending', origin: 'imported', by: ctx.operator });
      }
      const accepted = await acceptCertificate(tx, ctx.vault, p.cert, p.cert.facts, { by: ctx.operator, force: input.flag('force'), keyChecked: true, namesChecked: p.cert.host, freshHost, chain: pool });
      if (accepted.chain.pem) chained++;
      await ctx.audit({ action: 'import', target: p.host, outcome: 'ok', detail: `${p.cert.file} + ${p.key.file}` }, tx);
      if (added === Math.ceil(fresh.length / 2)) step('importcert-in-transaction');
    }
    for (const c of forStoredKeys) {
      await cancel.point();
      const accepted = await acceptCertificate(tx, ctx.vault, c, c.facts, { by: ctx.operator, force: input.flag('force'), chain: pool });
      if (accepted.chain.pem) chained++;
      await ctx.audit({ action: 'import', target: accepted.fqdn, outcome: 'ok', detail: c.file }, tx);
    }
  });
  ctx.session.invalidateNames();
  const stored = fresh.length + forStoredKeys.length;
  ctx.out.line(`${dir}: ${scan.files} files read; ${fresh.length} pairs added${forStoredKeys.length ? `, ${forStoredKeys.length} certificates for keys already in the vault` : ''}${newHosts.length ? `; ${newHosts.length} new hosts with an unset root password: ${newHosts.slice(0, 10).join(' ')}${newHosts.length > 10 ? ' …' : ''}` : ''}`);
  for (const p of selfSignedCas) if (fresh.some((f) => f.cert === p.cert)) ctx.out.line(`${p.cert.file}: a ${p.cert.selfSigned ? 'self-signed ' : ''}certificate marked as a CA, taken as the certificate of ${p.host}: it names that host and matches the key in ${p.key.file}`);
  if (chained > 0) ctx.out.line(`${chained} certificate${chained === 1 ? ' was' : 's were'} stored with an issuing chain of the CA certificates found`);
  if (skipped.length > 0) ctx.out.line(`passed over ${skipped.length} CA certificate${skipped.length === 1 ? '' : 's'} (chain files): ${skipped.slice(0, 5).map((s) => s.file).join(' ')}${skipped.length > 5 ? ' …' : ''}`);
  if (problems.length > 0) {
    problems.sort((a, b) => a.file.localeCompare(b.file));
    ctx.out.table(['FILE', 'NOT IMPORTED BECAUSE'], problems.map((p) => [p.file, p.reason]));
    throw new PasstoreError('mismatch', `${problems.length} item${problems.length === 1 ? ' was' : 's were'} not imported (listed above)${stored ? `; the ${stored} valid ones were` : ''}`);
  }
}

/** The host a pair goes to: the first name of its certificate already in the vault, else its first name. */
async function hostInVault(ctx: Context, p: Pair): Promise<string> {
  if (p.cert.hosts.length < 2) return p.host;
  for (const h of p.cert.hosts) if (await ctx.store.getHost(h)) return h;
  return p.host;
}
