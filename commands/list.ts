import { defineCommand } from '../src/command.js';
import { notFound } from '../src/errors.js';
import { shortName } from '../src/names.js';
import { describeLogin } from '../src/remote/remote.js';

export default defineCommand({
  name: 'list',
  aliases: ['l'],
  summary: 'List known hosts and their entries (never secrets)',
  description: 'Lists hosts matching PATTERN (all hosts without one) with how passtore logs in (root, or USER+sudo) and their entries as user:service; an entry whose password was never set is marked (unset).',
  usage: 'list [PATTERN]',
  args: [{ name: 'pattern', kind: 'pattern', optional: true }],
  needs: ['unlocked'],
  usesNoSecret: true,
  async run(ctx, input) {
    const glob = input.has('pattern') ? input.pattern('pattern').glob : '*';
    // Names and states only: list never needs a ciphertext, and reading them is most of the cost.
    const [hosts, entries] = await Promise.all([ctx.store.findHosts(glob), ctx.store.listEntryNames(glob)]);
    if (hosts.length === 0) {
      if (glob === '*') {
        ctx.out.line('no hosts in the vault yet (add one with: host add FQDN)');
        return;
      }
      throw notFound(`no host matches ${glob}`);
    }
    const byHost = new Map<string, string[]>();
    for (const e of entries) {
      const list = byHost.get(e.fqdn) ?? [];
      list.push(e.state === 'unset' ? ctx.out.paint(`${e.user}:${e.service} (unset)`, 'warn') : `${e.user}:${e.service}`);
      byHost.set(e.fqdn, list);
    }
    ctx.out.table(
      ['HOST', 'ADDRESS', 'ENTRIES', 'LOGIN'],
      hosts.map((h) => [shortName(h.fqdn, ctx.config.domain), h.address ? `${h.address}:${h.port}` : '', (byHost.get(h.fqdn) ?? ['-']).join(' '), describeLogin(h)]),
      { shrink: [2], drop: [1] },
    );
    ctx.out.line(`${hosts.length} host${hosts.length === 1 ? '' : 's'}, ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`);
  },
});
