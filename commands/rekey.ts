import { count as plural } from '../src/plural.js';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';

export default defineCommand({
  name: 'rekey',
  summary: 'Replace the data key and re-encrypt every secret',
  description: 'Makes a new data key and re-encrypts every stored secret, current and history, in one transaction: a crash leaves the vault readable with the old key or the new one. Key slots and passphrases are unchanged.',
  usage: 'rekey',
  args: [],
  needs: ['unlocked'],
  audited: true,
  async run(ctx) {
    if (!(await ctx.prompt.confirm('Replace the data key and re-encrypt every secret?'))) throw new PasstoreError('cancelled', 'nothing was changed');
    const count = await ctx.vault.rekey((tx, n) => ctx.audit({ action: 'rekey', target: 'vault', outcome: 'ok', detail: `${n} secrets re-encrypted` }, tx));
    ctx.out.line(`rekeyed: ${plural(count, 'secret')} re-encrypted under a new data key`);
  },
});
