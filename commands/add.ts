import { defineCommand } from '../src/command.js';
import { step } from '../src/faults.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { now, resolveHosts } from '../src/targets.js';
import type { NewEntry } from '../src/storage/store.js';
import type { AuditEvent } from '../src/vault/audit.js';

export default defineCommand({
  name: 'add',
  aliases: ['a'],
  summary: 'Store a password (asked twice)',
  description:
    'Stores a password for an entry that has none yet. With a pattern, the same password is stored for every matching host that has no such entry; hosts that already have one are listed and left alone (use update).',
  usage: 'add SPEC',
  args: [{ name: 'spec', kind: 'spec-pattern' }],
  needs: ['unlocked'],
  asksSecret: true,
  audited: true,
  async run(ctx, input) {
    const spec = input.specPattern('spec');
    const hosts = await resolveHosts(ctx.store, spec.host);
    const existing = new Map((await ctx.store.findEntries(spec.host.glob, spec.user, spec.service)).map((e) => [e.fqdn, e]));
    const targets = hosts.filter((h) => existing.get(h.fqdn)?.state !== 'set');
    const skipped = hosts.length - targets.length;
    const label = `${spec.user}@${spec.host.glob}:${spec.service}`;
    if (targets.length === 0) {
      throw new PasstoreError('exists', spec.host.wild ? `every host matching ${spec.host.glob} already has ${spec.user}:${spec.service}; use update` : `${label} already has a password; use update`);
    }
    if (spec.host.wild && !(await ctx.prompt.confirm(`Store the same password for ${spec.user}:${spec.service} on ${targets.length} hosts${skipped ? ` (${skipped} already have one and are skipped)` : ''}?`))) {
      throw new PasstoreError('cancelled', 'nothing was stored');
    }
    const secret = await ctx.newSecret(`Password for ${label}`);
    try {
      await ctx.change(async (tx) => {
        // A pattern is written with a few statements, not a round trip per host: one
        // version lookup, multi-row inserts and one batch of audit records.
        const versions = await tx.lastVersions(targets.map((h) => h.fqdn), spec.user, spec.service);
        const inserts: NewEntry[] = [];
        const events: AuditEvent[] = [];
        for (const host of targets) {
          const id = { fqdn: host.fqdn, user: spec.user, service: spec.service };
          const version = versions.get(host.fqdn)! + 1;
          const row = { version, state: 'set' as const, secretCiphertext: ctx.vault.sealPassword({ ...id, version }, secret), updatedAt: now(), updatedBy: ctx.operator };
          const placeholder = existing.get(host.fqdn);
          if (placeholder) await tx.updateEntry(placeholder.id, placeholder.version, row);
          else inserts.push({ hostId: host.id, user: spec.user, service: spec.service, ...row });
          events.push({ action: 'add', target: formatSpec(id), outcome: 'ok' });
          step('add-in-transaction');
        }
        await tx.insertEntries(inserts);
        await ctx.audit(events, tx);
      });
    } finally {
      secret.wipe();
    }
    ctx.session.invalidateNames();
    ctx.out.line(targets.length === 1 ? `stored ${formatSpec({ fqdn: targets[0]!.fqdn, user: spec.user, service: spec.service })}` : `stored ${spec.user}:${spec.service} on ${targets.length} hosts${skipped ? `, ${skipped} skipped (already set)` : ''}`);
  },
});
