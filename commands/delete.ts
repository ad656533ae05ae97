import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { now, resolveEntry } from '../src/targets.js';

export default defineCommand({
  name: 'delete',
  aliases: ['d'],
  summary: 'Delete one entry, after confirmation (kept in history)',
  description: 'Deletes one exact entry after confirmation. Its password stays, encrypted, in the entry history.',
  usage: 'delete SPEC',
  args: [{ name: 'spec', kind: 'spec' }],
  needs: ['unlocked'],
  audited: true,
  async run(ctx, input) {
    const spec = input.spec('spec');
    const entry = await resolveEntry(ctx.store, spec);
    if (!(await ctx.prompt.confirm(`Delete ${formatSpec(spec)}?`))) throw new PasstoreError('cancelled', 'nothing was deleted');
    await ctx.change(async (tx) => {
      await tx.archiveEntry({ fqdn: entry.fqdn, user: entry.user, service: entry.service, version: entry.version, secretCiphertext: entry.secretCiphertext, reason: 'deleted', archivedAt: now(), archivedBy: ctx.operator });
      await tx.deleteEntry(entry.id);
      await ctx.audit({ action: 'delete', target: formatSpec(spec), outcome: 'ok' }, tx);
    });
    ctx.session.invalidateNames();
    ctx.out.line(`deleted ${formatSpec(spec)} (kept in history)`);
  },
});
