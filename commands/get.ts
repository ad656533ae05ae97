import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { resolveEntry } from '../src/targets.js';

export default defineCommand({
  name: 'get',
  aliases: ['g'],
  summary: 'Show one password',
  description:
    'Shows the password of one exact entry (never a pattern), only on a terminal, and erases it from the screen after reveal_timeout seconds or at the next key. The reveal is written to the audit trail before the password is shown.',
  usage: 'get SPEC',
  args: [{ name: 'spec', kind: 'spec' }],
  needs: ['unlocked'],
  reveals: true,
  audited: true,
  async run(ctx, input) {
    const spec = input.spec('spec');
    const entry = await resolveEntry(ctx.store, spec);
    if (entry.state === 'unset') throw new PasstoreError('not-found', `${formatSpec(spec)} has no password yet (placeholder); set it with update`);
    const secret = ctx.vault.openPassword(entry);
    try {
      // Fail closed: if the record cannot be written, nothing is shown.
      await ctx.audit({ action: 'reveal', target: formatSpec(spec), outcome: 'ok' });
      await ctx.out.reveal!(formatSpec(spec), secret);
    } finally {
      secret.wipe();
    }
  },
});
