import { defineCommand } from '../src/command.js';
import { readLocalFile } from '../src/targets.js';
import { isRemoteFile, parseRemoteFile } from '../src/names.js';
import { fetchRemoteFile } from '../src/remote/files.js';
import { PasstoreError } from '../src/errors.js';
import { acceptCertificate } from '../src/x509/cert-store.js';
import { readObjects } from '../src/x509/pem.js';
import { confirmIssuers } from '../src/x509/trust.js';

export default defineCommand({
  name: 'getcrt',
  summary: 'Store an issued certificate; its host is found by its key',
  description:
    'Reads the certificates in FILE (PEM or DER) and stores each one whose public key matches a private key in the vault, for the host that key belongs to (the file name does not matter). A certificate that matches no stored key, does not name the key\'s host, or has expired (unless --force) is refused and nothing is stored. With [ca] trust configured, each certificate\'s issuer is shown first, and one whose chain does not verify to a trusted CA is stored only when you confirm. The previous certificate and key of the host become history. user@workstation:FILE fetches it over SFTP through the network guard, asking that user\'s password at a no-echo prompt.',
  usage: 'getcrt FILE|user@workstation:FILE [--force]',
  args: [{ name: 'file', kind: 'path' }],
  flags: { force: { type: 'boolean', description: 'store an expired certificate anyway' } },
  needs: ['unlocked'],
  asksSecret: (input) => isRemoteFile(input.word('file')),
  audited: true,
  async run(ctx, input) {
    const file = input.word('file');
    const data = isRemoteFile(file) ? await fetchRemoteFile(ctx, parseRemoteFile(file, ctx.config.domain, { pathRequired: true })) : readLocalFile(file);
    const { objects, problems } = readObjects(data);
    // A chain file holds CA certificates too: only host certificates are stored.
    const certs = objects.flatMap((o) => (o.kind === 'certificate' && !o.cert.ca ? [o] : []));
    if (certs.length === 0) throw new PasstoreError('mismatch', `${file}: no certificate in it${problems.length ? ` (${problems[0]})` : ''}`);
    // Who issued it is shown first; one that does not verify to [ca] trust is stored only if confirmed.
    const chain = objects.flatMap((o) => (o.kind === 'certificate' && o.cert.ca ? [o.cert] : []));
    await confirmIssuers(certs, chain, ctx.config.ca.trust, ctx.out, ctx.prompt);
    const stored = await ctx.change(async (tx) => {
      const done = [];
      for (const c of certs) {
        const accepted = await acceptCertificate(tx, ctx.vault, c.cert, c.facts, { by: ctx.operator, force: input.flag('force') });
        await ctx.audit({ action: 'getcrt', target: accepted.fqdn, outcome: 'ok', detail: `serial ${c.facts.serial}` }, tx);
        done.push({ ...accepted, notAfter: c.facts.notAfter });
      }
      return done;
    });
    for (const s of stored) ctx.out.line(`stored the certificate for ${s.fqdn} (not after ${s.notAfter.slice(0, 10)})${s.replaced ? '; the previous pair is kept as history' : ''}`);
  },
});
