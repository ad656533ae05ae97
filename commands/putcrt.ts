import { defineCommand } from '../src/command.js';
import { formatError, PasstoreError } from '../src/errors.js';
import { runPool } from '../src/pool.js';
import { deployPair } from '../src/remote/deploy.js';
import { now, resolveHosts } from '../src/targets.js';
import { namesHost, parseCertificate } from '../src/x509/certificate.js';
import { loadPkcs8, pkcs8Pem } from '../src/x509/keys.js';
import type { CertRow, HostRow } from '../src/storage/store.js';
import type { Context } from '../src/command.js';

/** Checks the pair locally, before any connection: it matches, and names this host. */
async function pairFor(ctx: Context, host: HostRow, force: boolean): Promise<{ cert: CertRow; keyPem: Buffer }> {
  const cert = (await ctx.store.listCertificates(host.id)).find((c) => c.state === 'current');
  if (!cert) throw new PasstoreError('not-found', `${host.fqdn} has no certificate to deploy`);
  const key = (await ctx.store.listKeys(host.id)).find((k) => k.id === cert.keyId);
  if (!key) throw new PasstoreError('integrity', `${host.fqdn}: the certificate's private key is missing`);
  const { cert: x509 } = parseCertificate(cert.pem);
  if (!namesHost(x509, host.fqdn)) throw new PasstoreError('mismatch', `${host.fqdn}: the certificate does not name this host; refused before any connection`);
  if (Date.parse(cert.notAfter) <= Date.now() && !force) throw new PasstoreError('policy', `${host.fqdn}: the certificate expired on ${cert.notAfter.slice(0, 10)}; refused (use --force)`);
  const pkcs8 = ctx.vault.openKey(key);
  try {
    if (!x509.checkPrivateKey(loadPkcs8(pkcs8))) throw new PasstoreError('mismatch', `${host.fqdn}: the certificate does not match its private key; refused before any connection`);
    return { cert, keyPem: pkcs8Pem(pkcs8) };
  } finally {
    pkcs8.fill(0);
  }
}

export default defineCommand({
  name: 'putcrt',
  summary: 'Deploy the key and certificate to their host, and only there',
  description:
    'For each host, checks that its current certificate matches its private key and names the host, before any connection; then, through the network guard and over SSH with the pinned host key and the stored root password, writes both as new files in crt_path, gives them mode 0644 (hostcert.pem) and 0400 (hostkey.pem), owner root, keeps the previous pair as dated backups, renames the new pair into place, and reads both back to compare their SHA-256. With a pattern, several hosts are done at once, with a progress line and a result table; the exit status is 1 if any failed.',
  usage: 'putcrt HOST|PATTERN [--force] [--jobs N]',
  args: [{ name: 'pattern', kind: 'pattern' }],
  flags: {
    force: { type: 'boolean', description: 'deploy an expired certificate too' },
    jobs: { type: 'string', description: 'how many hosts at once (default 8)', check: (v) => (/^\d{1,3}$/.test(v) && Number(v) >= 1 && Number(v) <= 64 ? undefined : 'expected a number from 1 to 64') },
  },
  needs: ['unlocked'],
  audited: true,
  async run(ctx, input) {
    const hosts = await resolveHosts(ctx.store, input.pattern('pattern'));
    const force = input.flag('force');
    const results = await runPool(
      hosts,
      Number(input.option('jobs') ?? ctx.concurrency),
      async (host) => {
        const { cert, keyPem } = await pairFor(ctx, host, force);
        try {
          const done = await ctx.remote.asRoot(host, (conn) => deployPair(conn, ctx.config.crtPath, cert.pem, keyPem));
          await ctx.change(async (tx) => {
            await tx.setCertificateDeployed(cert.id, now());
            await ctx.audit({ action: 'deploy', target: host.fqdn, outcome: 'ok', detail: `serial ${cert.serial}, backup .${done.backupStamp}` }, tx);
          });
          return `deployed to ${ctx.config.crtPath} (previous pair kept as .${done.backupStamp})`;
        } catch (e) {
          await ctx.audit({ action: 'deploy', target: host.fqdn, outcome: 'failed', detail: e instanceof PasstoreError ? e.message.slice(0, 200) : 'error' }).catch(() => undefined);
          throw e;
        } finally {
          keyPem.fill(0);
        }
      },
      (done, total) => total > 1 && ctx.out.progress(`putcrt: ${done} of ${total} hosts`),
    );
    const failed = results.filter((r) => !r.ok);
    if (hosts.length === 1 && failed.length === 1) throw failed[0]!.error;
    if (hosts.length === 1) {
      ctx.out.line(`${hosts[0]!.fqdn}: ${results[0]!.value}`);
      return;
    }
    ctx.out.table(['HOST', 'RESULT'], results.map((r) => [r.item.fqdn, r.ok ? ctx.out.paint(String(r.value), 'good') : ctx.out.paint(formatError(r.error).replace(/^error: /, 'failed: '), 'bad')]));
    if (failed.length > 0) throw new PasstoreError('partial', `putcrt failed for ${failed.length} of ${hosts.length} hosts (listed above)`);
    ctx.out.line(`deployed to ${hosts.length} hosts`);
  },
});
