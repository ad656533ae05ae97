import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { Secret } from '../src/secret.js';
import { now, resolveEntries } from '../src/targets.js';

export default defineCommand({
  name: 'update',
  aliases: ['u'],
  summary: 'Change a stored password (old one asked first)',
  description:
    'Asks the old password first, as passwd does, and checks it against the vault; then asks the new one twice, or with --generate makes a strong random password for each entry. The old password is kept in the entry history. With a pattern, every matching entry whose stored password equals the old one is updated and a per-host result table is shown. This version changes the password stored in the vault only.',
  usage: 'update SPEC [--generate]',
  args: [{ name: 'spec', kind: 'spec-pattern' }],
  flags: { generate: { type: 'boolean', description: 'make a strong random password (24 characters) per entry instead of asking' } },
  needs: ['unlocked'],
  asksSecret: true,
  audited: true,
  async run(ctx, input) {
    const spec = input.specPattern('spec');
    const entries = await resolveEntries(ctx.store, spec);
    const label = `${spec.user}@${spec.host.glob}:${spec.service}`;
    const results = new Map<number, string>();
    const accepted = entries.filter((e) => e.state === 'unset');
    for (const e of accepted) results.set(e.id, 'updated (was unset)');
    const set = entries.filter((e) => e.state === 'set');
    if (set.length > 0) {
      const old = await ctx.prompt.secret(`Old password for ${label}`);
      try {
        for (const e of set) {
          const stored = ctx.vault.openPassword(e);
          const same = stored.equals(old);
          stored.wipe();
          if (same) {
            accepted.push(e);
            results.set(e.id, 'updated');
          } else results.set(e.id, ctx.out.paint('old password does not match; unchanged', 'bad'));
        }
      } finally {
        old.wipe();
      }
    }
    if (accepted.length === 0) {
      throw new PasstoreError('mismatch', entries.length === 1 ? 'the old password does not match; nothing was changed' : 'the old password matches none of the entries; nothing was changed');
    }
    const generate = input.flag('generate');
    const shared = generate ? undefined : await ctx.newSecret(`New password for ${label}`);
    try {
      await ctx.change(async (tx) => {
        for (const e of accepted) {
          const fresh = shared ?? Secret.generate();
          try {
            const version = (await tx.lastVersion(e.fqdn, e.user, e.service)) + 1;
            if (e.secretCiphertext) {
              await tx.archiveEntry({ fqdn: e.fqdn, user: e.user, service: e.service, version: e.version, secretCiphertext: e.secretCiphertext, reason: 'updated', archivedAt: now(), archivedBy: ctx.operator });
            }
            await tx.updateEntry(e.id, e.version, { version, state: 'set', secretCiphertext: ctx.vault.sealPassword({ fqdn: e.fqdn, user: e.user, service: e.service, version }, fresh), updatedAt: now(), updatedBy: ctx.operator });
            await ctx.audit({ action: 'update', target: formatSpec(e), outcome: 'ok', detail: generate ? 'generated' : '' }, tx);
          } finally {
            if (!shared) fresh.wipe();
          }
        }
      });
    } finally {
      shared?.wipe();
    }
    const failed = entries.length - accepted.length;
    if (spec.host.wild || failed > 0) {
      ctx.out.table(['ENTRY', 'RESULT'], entries.map((e) => [formatSpec(e), results.get(e.id)!]));
    } else ctx.out.line(`updated ${formatSpec(accepted[0]!)}`);
    if (failed > 0) throw new PasstoreError('mismatch', `${failed} of ${entries.length} entries were not updated`);
  },
});
