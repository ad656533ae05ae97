import { isIP } from 'node:net';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { now, resolveHosts } from '../src/targets.js';

const port = (v: string) => (/^\d{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : 'expected a port number from 1 to 65535');
const address = (v: string) => (isIP(v) ? undefined : 'expected an IPv4 or IPv6 address');

export default defineCommand({
  name: 'host',
  summary: 'Manage hosts: add, rm',
  description: 'host add registers a host (its SSH address and port are optional; the name is used when no address is given). host rm removes a host after confirmation; its entries go to history.',
  subcommands: {
    add: {
      usage: 'host add FQDN [--address IP] [--port N]',
      summary: 'Register a host',
      args: [{ name: 'host', kind: 'host' }],
      flags: {
        address: { type: 'string', description: 'the address to reach it at', check: address },
        port: { type: 'string', description: 'its SSH port (default 22)', check: port },
      },
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const fqdn = input.host('host');
        await ctx.change(async (tx) => {
          await tx.addHost({ fqdn, address: input.option('address') ?? null, port: Number(input.option('port') ?? 22), createdAt: now() });
          await ctx.audit({ action: 'host-add', target: fqdn, outcome: 'ok' }, tx);
        });
        ctx.session.invalidateNames();
        ctx.out.line(`added host ${fqdn}`);
      },
    },
    rm: {
      usage: 'host rm HOST',
      summary: 'Remove a host (its entries go to history)',
      args: [{ name: 'host', kind: 'host' }],
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const [host] = await resolveHosts(ctx.store, { glob: input.host('host'), wild: false });
        if ((await ctx.store.listKeys(host!.id)).length > 0) {
          throw new PasstoreError('policy', `${host!.fqdn} holds private keys and certificates, which passtore never deletes; the host stays`);
        }
        const entries = await ctx.store.findEntries(host!.fqdn);
        const what = entries.length ? ` and its ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (kept in history)` : '';
        if (!(await ctx.prompt.confirm(`Remove host ${host!.fqdn}${what}?`))) throw new PasstoreError('cancelled', 'nothing was removed');
        await ctx.change(async (tx) => {
          for (const e of entries) {
            await tx.archiveEntry({ fqdn: e.fqdn, user: e.user, service: e.service, version: e.version, secretCiphertext: e.secretCiphertext, reason: 'deleted', archivedAt: now(), archivedBy: ctx.operator });
            await tx.deleteEntry(e.id);
            await ctx.audit({ action: 'delete', target: formatSpec(e), outcome: 'ok' }, tx);
          }
          await tx.removeHost(host!.id);
          await ctx.audit({ action: 'host-rm', target: host!.fqdn, outcome: 'ok' }, tx);
        });
        ctx.session.invalidateNames();
        ctx.out.line(`removed host ${host!.fqdn}`);
      },
    },
  },
});
