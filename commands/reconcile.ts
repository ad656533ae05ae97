import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';

export default defineCommand({
  name: 'reconcile',
  summary: 'Resolve interrupted password changes by trying both passwords on the hosts',
  description: 'For every entry whose change on its host was interrupted (a pending password), logs in with the new password, then with the old one, and keeps the one the host accepts; when neither works both stay stored. It also runs when the shell starts.',
  usage: 'reconcile',
  args: [],
  needs: ['unlocked'],
  async run(ctx, input) {
    // Ctrl-C gives up the logins being made; what is not settled stays pending.
    const lines = await ctx.session.reconcile(input.signal);
    if (lines.length === 0) ctx.out.line('no interrupted password change');
    for (const l of lines) ctx.out.line(l.text);
    const open = lines.filter((l) => !l.resolved).length;
    if (input.signal.aborted) throw new PasstoreError('cancelled', `cancelled; ${open} password change${open === 1 ? '' : 's'} still pending (listed above)`);
    if (open > 0) throw new PasstoreError('partial', `${open} password change${open === 1 ? '' : 's'} still unresolved (listed above)`);
  },
});
