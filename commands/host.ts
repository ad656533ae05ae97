import { isIP } from 'node:net';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { now, resolveHosts } from '../src/targets.js';

const port = (v: string) => (/^\d{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : 'expected a port number from 1 to 65535');
const address = (v: string) => (isIP(v) ? undefined : 'expected an IPv4 or IPv6 address');

export default defineCommand({
  name: 'host',
  summary: 'Manage hosts: add, address, trust, rm',
  description:
    'host add registers a host (its SSH address and port are optional; without an address the name is resolved). host address sets or changes where it is reached. host trust connects once, shows the SSH host key\'s fingerprint and pins it when you confirm; every later connection must present that key. It authenticates with nothing (the SSH "none" method): no stored password goes to a host before its key is pinned. host trust runs only when typed at the terminal, never from a script; host address is scriptable, as the pinned key still guards the new address. host rm removes a host after confirmation; its entries go to history.',
  subcommands: {
    add: {
      usage: 'host add HOST [--address IP] [--port N]',
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
    address: {
      usage: 'host address HOST IP [--port N]',
      summary: 'Set the address (and SSH port) a host is reached at',
      args: [
        { name: 'host', kind: 'host' },
        { name: 'address', kind: 'word' },
      ],
      flags: { port: { type: 'string', description: 'its SSH port (unchanged when not given)', check: port } },
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const [host] = await resolveHosts(ctx.store, { glob: input.host('host'), wild: false });
        const ip = input.word('address');
        const problem = address(ip);
        if (problem) throw new PasstoreError('usage', `host address: '${ip}': ${problem}`);
        await ctx.change(async (tx) => {
          await tx.setHostAddress(host!.id, ip, Number(input.option('port') ?? host!.port));
          await ctx.audit({ action: 'host-address', target: host!.fqdn, outcome: 'ok', detail: ip }, tx);
        });
        ctx.out.line(`${host!.fqdn} is reached at ${ip}:${input.option('port') ?? host!.port}`);
      },
    },
    trust: {
      usage: 'host trust HOST [--replace]',
      summary: 'Pin the host\'s SSH key after you confirm its fingerprint',
      args: [{ name: 'host', kind: 'host' }],
      flags: { replace: { type: 'boolean', description: 'replace a pinned key that changed (after checking why)' } },
      needs: ['unlocked'],
      terminalOnly: true,
      audited: true,
      async run(ctx, input) {
        const [host] = await resolveHosts(ctx.store, { glob: input.host('host'), wild: false });
        if (host!.sshHostKey && !input.flag('replace')) {
          throw new PasstoreError('exists', `${host!.fqdn} already has a pinned SSH key; use --replace only if you know why it changed`);
        }
        const target = { ...(await ctx.remote.targetOf(host!)), pinnedKey: undefined };
        let pinned: string | undefined;
        let fingerprint = '';
        const onNewKey = async (key: { fingerprint: string; type: string; pinned: string }) => {
          ctx.out.line(`${host!.fqdn} (${target.address}:${target.port}) presents the ${key.type} key ${key.fingerprint}`);
          const ok = await ctx.prompt.confirm('Does this match the host\'s own fingerprint (ssh-keygen -lf on its host key)? Pin it?');
          if (ok) {
            pinned = key.pinned;
            fingerprint = key.fingerprint;
          }
          return ok;
        };
        // The key is read during the handshake; authentication offers only `none`. No
        // stored secret ever goes to a host whose key is not pinned yet: the address may be
        // anyone's (a script or a neighbour may have changed it).
        try {
          await ctx.remote.with(target, { username: 'root' }, async () => undefined, onNewKey);
        } catch (e) {
          // The `none` login is refused after the key was shown: that is enough.
          if (!(pinned && e instanceof PasstoreError && e.code === 'auth')) throw e;
        }
        if (!pinned) throw new PasstoreError('cancelled', 'no key was pinned');
        await ctx.change(async (tx) => {
          await tx.setHostKey(host!.id, pinned!);
          await ctx.audit({ action: 'host-trust', target: host!.fqdn, outcome: 'ok', detail: fingerprint }, tx);
        });
        ctx.out.line(`pinned ${fingerprint} for ${host!.fqdn}`);
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
