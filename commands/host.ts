import { isIP } from 'node:net';
import { cancelledBy } from '../src/cancel.js';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { GRID, PROFILE_NAME } from '../src/remote/profiles.js';
import { describeLogin } from '../src/remote/remote.js';
import { now, resolveHost, resolveHosts } from '../src/targets.js';

const port = (v: string) => (/^\d{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : 'expected a port number from 1 to 65535');
const address = (v: string) => (isIP(v) ? undefined : 'expected an IPv4 or IPv6 address');
const userName = (v: string) => (/^[a-z_][a-z0-9_-]{0,31}$/.test(v) ? undefined : 'expected a login name (lowercase letters, digits, _ and -, at most 32)');

export default defineCommand({
  name: 'host',
  summary: 'Manage hosts: add, address, login, profile, trust, rm',
  description:
    'host add registers a host (its SSH address and port are optional; without an address the name is resolved). host address sets or changes where it is reached. host login sets the user passtore logs in as (root by default) and whether commands that need root run through sudo. host profile assigns the deploy profiles putcrt writes (default grid). host trust connects once, shows the SSH host key\'s fingerprint and pins it when you confirm; every later connection must present that key. It authenticates with nothing (the SSH "none" method): no stored password goes to a host before its key is pinned. host trust runs only when typed at the terminal, never from a script; host address is scriptable, as the pinned key still guards the new address. host rm removes a host after confirmation; its entries go to history.',
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
        const host = await resolveHost(ctx.store, input.host('host'));
        const ip = input.word('address');
        const problem = address(ip);
        if (problem) throw new PasstoreError('usage', `host address: '${ip}': ${problem}`);
        await ctx.change(async (tx) => {
          await tx.setHostAddress(host.id, ip, Number(input.option('port') ?? host.port));
          await ctx.audit({ action: 'host-address', target: host.fqdn, outcome: 'ok', detail: ip }, tx);
        });
        ctx.out.line(`${host.fqdn} is reached at ${ip}:${input.option('port') ?? host.port}`);
      },
    },
    login: {
      usage: 'host login HOST|PATTERN --user NAME [--sudo]',
      summary: 'Set the user passtore logs in as, and whether root commands use sudo',
      args: [{ name: 'pattern', kind: 'pattern' }],
      flags: {
        user: { type: 'string', description: 'the login user (root: log in as root)', check: userName },
        sudo: { type: 'boolean', description: 'run commands that need root through sudo as that user' },
      },
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const user = input.option('user');
        if (!user) throw new PasstoreError('usage', 'host login: --user NAME is required (root to log in as root)');
        const sudo = input.flag('sudo');
        if (user === 'root' && sudo) throw new PasstoreError('usage', 'host login: root needs no sudo');
        const hosts = await resolveHosts(ctx.store, input.pattern('pattern'));
        await ctx.change(async (tx) => {
          for (const h of hosts) {
            await tx.setHostLogin(h.id, user === 'root' ? null : user, sudo);
            await ctx.audit({ action: 'host-login', target: h.fqdn, outcome: 'ok', detail: `${user}${sudo ? ' with sudo' : ''}` }, tx);
          }
        });
        const how = describeLogin({ ...hosts[0]!, loginUser: user === 'root' ? null : user, loginSudo: sudo });
        for (const h of hosts) ctx.out.line(`${h.fqdn} is reached as ${how}`);
      },
    },
    profile: {
      usage: 'host profile HOST|PATTERN NAME...',
      summary: 'Assign the deploy profiles putcrt writes (default grid)',
      args: [
        { name: 'pattern', kind: 'pattern' },
        { name: 'profile', kind: 'word' },
      ],
      variadic: true,
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const names = [...new Set(input.rest())];
        for (const n of names) {
          if (!PROFILE_NAME.test(n)) throw new PasstoreError('usage', `host profile: '${n}' is not a profile name`);
          if (n !== GRID && !ctx.config.profiles?.[n]) throw new PasstoreError('config', `host profile: no [profile ${n}] section in ${ctx.config.file ?? 'the configuration'}`);
        }
        const hosts = await resolveHosts(ctx.store, input.pattern('pattern'));
        await ctx.change(async (tx) => {
          for (const h of hosts) {
            await tx.setHostProfiles(h.id, names.length === 1 && names[0] === GRID ? null : names);
            await ctx.audit({ action: 'host-profile', target: h.fqdn, outcome: 'ok', detail: names.join(' ') }, tx);
          }
        });
        for (const h of hosts) ctx.out.line(`${h.fqdn} is deployed by profile${names.length > 1 ? 's' : ''} ${names.join(', ')}`);
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
        const host = await resolveHost(ctx.store, input.host('host'));
        if (host.sshHostKey && !input.flag('replace')) {
          throw new PasstoreError('exists', `${host.fqdn} already has a pinned SSH key; use --replace only if you know why it changed`);
        }
        const target = { ...(await ctx.remote.targetOf(host)), pinnedKey: undefined };
        let pinned: string | undefined;
        let fingerprint = '';
        const onNewKey = async (key: { fingerprint: string; type: string; pinned: string }) => {
          ctx.out.line(`${host.fqdn} (${target.address}:${target.port}) presents the ${key.type} key ${key.fingerprint}`);
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
          // Ctrl-C while connecting (a host that accepts and never answers) ends it at once.
          await ctx.remote.with(target, { username: 'root' }, async () => undefined, onNewKey, input.signal);
        } catch (e) {
          if (cancelledBy(e, input.signal)) throw new PasstoreError('cancelled', 'cancelled; no key was pinned');
          // The `none` login is refused after the key was shown: that is enough.
          if (!(pinned && e instanceof PasstoreError && e.code === 'auth')) throw e;
        }
        if (!pinned) throw new PasstoreError('cancelled', 'no key was pinned');
        await ctx.change(async (tx) => {
          await tx.setHostKey(host.id, pinned!);
          await ctx.audit({ action: 'host-trust', target: host.fqdn, outcome: 'ok', detail: fingerprint }, tx);
        });
        ctx.out.line(`pinned ${fingerprint} for ${host.fqdn}`);
      },
    },
    rm: {
      usage: 'host rm HOST',
      summary: 'Remove a host (its entries go to history)',
      args: [{ name: 'host', kind: 'host' }],
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const host = await resolveHost(ctx.store, input.host('host'));
        if ((await ctx.store.listKeys(host.id)).length > 0) {
          throw new PasstoreError('policy', `${host.fqdn} holds private keys and certificates, which passtore never deletes; the host stays`);
        }
        const entries = await ctx.store.findEntries(host.fqdn);
        const what = entries.length ? ` and its ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (kept in history)` : '';
        if (!(await ctx.prompt.confirm(`Remove host ${host.fqdn}${what}?`))) throw new PasstoreError('cancelled', 'nothing was removed');
        await ctx.change(async (tx) => {
          for (const e of entries) {
            await tx.archiveEntry({ fqdn: e.fqdn, user: e.user, service: e.service, version: e.version, secretCiphertext: e.secretCiphertext, reason: 'deleted', archivedAt: now(), archivedBy: ctx.operator });
            await tx.deleteEntry(e.id);
            await ctx.audit({ action: 'delete', target: formatSpec(e), outcome: 'ok' }, tx);
          }
          await tx.removeHost(host.id);
          await ctx.audit({ action: 'host-rm', target: host.fqdn, outcome: 'ok' }, tx);
        });
        ctx.session.invalidateNames();
        ctx.out.line(`removed host ${host.fqdn}`);
      },
    },
  },
});
