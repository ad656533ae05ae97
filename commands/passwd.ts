import { PASSPHRASE_MIN } from '../src/policy.js';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';

export default defineCommand({
  name: 'passwd',
  summary: 'Change your passphrase',
  description: 'Asks your current passphrase, then the new one twice, and rewraps your key slot only; nothing else is rewritten.',
  usage: 'passwd',
  args: [],
  needs: ['unlocked'],
  asksSecret: true,
  audited: true,
  async run(ctx) {
    const current = await ctx.prompt.secret(`Current passphrase for ${ctx.operator}`);
    let ok: boolean;
    try {
      ok = await ctx.vault.checkPassphrase(ctx.operator, current);
    } finally {
      current.wipe();
    }
    if (!ok) throw new PasstoreError('bad-passphrase', 'wrong passphrase; nothing was changed');
    const fresh = await ctx.newSecret(`New passphrase for ${ctx.operator}`, PASSPHRASE_MIN);
    try {
      await ctx.change(async (tx) => {
        await ctx.vault.changePassphrase(tx, ctx.operator, fresh);
        await ctx.audit({ action: 'passwd', target: `operator:${ctx.operator}`, outcome: 'ok' }, tx);
      });
    } finally {
      fresh.wipe();
    }
    ctx.out.line(`passphrase changed for ${ctx.operator}`);
  },
});
