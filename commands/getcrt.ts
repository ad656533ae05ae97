import { Cancel, cancelledBy } from '../src/cancel.js';
import { defineCommand, type Context, type Input } from '../src/command.js';
import { isRemoteFile, parseRemoteFile } from '../src/names.js';
import { fetchRemoteFile } from '../src/remote/files.js';
import { PasstoreError } from '../src/errors.js';
import { acceptCertificate } from '../src/x509/cert-store.js';
import { ChainPool } from '../src/x509/chain.js';
import { confirmIssuers } from '../src/x509/trust.js';
import { sortDelivered } from '../src/x509/delivery.js';
import { readInputFile } from '../src/x509/input-file.js';
import { Passphrases } from '../src/x509/passphrases.js';
import { readObjects, type Found } from '../src/x509/pem.js';

export default defineCommand({
  name: 'getcrt',
  summary: 'Store an issued certificate; its host is found by its key',
  description:
    'Reads the certificates in FILE (PEM, DER, a PKCS#7 bundle, or a PKCS#12 file, whose passphrase is asked) and stores each one whose public key matches a private key in the vault, for the host that key belongs to (the file name does not matter). The chain (CA certificates, the issuers of the others, self-signed certificates that match no key) is no host\'s certificate: those of its certificates that issue a stored certificate, each signature verified, are stored with it as its issuing chain (the issuer first; a self-signed root only when it is the whole chain), shown by showcrt and deployed by the chain and fullchain files of deploy profiles; the others are named and passed over. A self-signed certificate marked as a CA that matches a key is that host\'s certificate, and said so. A certificate that matches no stored key, does not name the key\'s host, or has expired (unless --force) is refused and nothing is stored. With [ca] trust configured, each certificate\'s issuer is shown first, and one whose chain does not verify to a trusted CA is stored only when you confirm. The previous certificate and key of the host become history. FILE must be a regular file (a FIFO or device is refused). user@workstation:FILE fetches it over SFTP through the network guard, asking that user\'s password at a no-echo prompt.',
  usage: 'getcrt FILE|user@workstation:FILE [--force]',
  args: [{ name: 'file', kind: 'path' }],
  flags: { force: { type: 'boolean', description: 'store an expired certificate anyway' } },
  needs: ['unlocked'],
  asksSecret: (input) => isRemoteFile(input.word('file')),
  audited: true,
  async run(ctx, input) {
    try {
      await getcrt(ctx, input);
    } catch (e) {
      // Ctrl-C is checked only before the one transaction that stores.
      if (cancelledBy(e, input.signal)) throw new PasstoreError('cancelled', 'cancelled; nothing stored');
      throw e;
    }
  },
});

async function getcrt(ctx: Context, input: Input): Promise<void> {
  const cancel = new Cancel(input.signal);
  const file = input.word('file');
  const data = isRemoteFile(file) ? await fetchRemoteFile(ctx, parseRemoteFile(file, ctx.config.domain, { pathRequired: true }), input.signal) : await readInputFile(file, input.signal);
  const { objects, problems } = readObjects(data);
  const found: Found[] = [];
  const passphrases = new Passphrases(ctx.scripted ? undefined : ctx.prompt);
  try {
    for (const o of objects) {
      if (o.kind !== 'locked') found.push(o);
      else if (o.locked.format === 'pkcs12') {
        const opened = await passphrases.open(file, o.locked);
        if (!opened.ok) throw new PasstoreError('mismatch', `${file}: ${opened.reason}`);
        found.push(...opened.contents.objects);
        problems.push(...opened.contents.problems);
      }
    }
  } finally {
    passphrases.close();
  }
  const all = found.flatMap((o) => (o.kind === 'certificate' ? [o] : []));
  const { hosts: certs, chain } = await sortDelivered(all, ctx.store);
  if (certs.length === 0) {
    const why = chain.length ? `only its chain: ${chain.map((c) => `${c.facts.subject || '(empty subject)'} (${c.why})`).join('; ')}` : problems.length ? problems[0] : 'no certificate in it';
    throw new PasstoreError('mismatch', `${file}: no host certificate in it: ${why}`);
  }
  // Who issued it is shown first; one that does not verify to [ca] trust is stored only if confirmed.
  const others = all.filter((o) => !certs.some((c) => c.cert === o.cert));
  await confirmIssuers(certs, others.map((o) => o.cert), ctx.config.ca.trust, ctx.out, ctx.prompt);
  // The others that issue a stored certificate are stored with it as its issuing chain.
  const pool = new ChainPool(others);
  cancel.check();
  const stored = await ctx.change(async (tx) => {
    const done = [];
    for (const c of certs) {
      const accepted = await acceptCertificate(tx, ctx.vault, c.cert, c.facts, { by: ctx.operator, force: input.flag('force'), chain: pool });
      await ctx.audit({ action: 'getcrt', target: accepted.fqdn, outcome: 'ok', detail: `serial ${c.facts.serial}${c.selfSignedCa ? ' (self-signed CA)' : ''}` }, tx);
      done.push({ ...accepted, notAfter: c.facts.notAfter, selfSignedCa: c.selfSignedCa });
    }
    return done;
  });
  for (const s of stored) {
    ctx.out.line(`stored the certificate for ${s.fqdn} (not after ${s.notAfter.slice(0, 10)})${s.replaced ? '; the previous pair is kept as history' : ''}`);
    if (s.chain.subjects.length) ctx.out.line(`${s.fqdn}: stored with its issuing chain: ${s.chain.subjects.map((n) => n || '(empty subject)').join('; ')}`);
    if (s.selfSignedCa) ctx.out.line(`note: it is self-signed and marked as a CA; taken as ${s.fqdn}'s certificate because it names that host and matches its key`);
  }
  // Delivered with it but issuing none of them: no part of any chain, so not stored.
  const unused = pool.unused();
  if (unused.length) ctx.out.line(`passed over ${unused.length} chain certificate${unused.length === 1 ? '' : 's'} that issue${unused.length === 1 ? 's' : ''} none of the certificates stored: ${unused.map((c) => c.facts.subject || '(empty subject)').join('; ')}`);
}
