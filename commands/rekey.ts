import { count as plural } from '../src/plural.js';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';

export default defineCommand({
  name: 'rekey',
  summary: 'Replace the root and data keys and re-encrypt every secret',
  description: 'Makes a new root key and a new data key, re-encrypts every stored secret, current and history, seals the new root key to every remaining key slot (key files included) and carries the audit key over, in one transaction: a crash leaves the vault readable with the old keys or the new ones. Passphrases and key files are unchanged; an operator removed before, who kept a copy of the database or of a backup, opens nothing written afterwards.',
  usage: 'rekey',
  args: [],
  needs: ['unlocked'],
  audited: true,
  async run(ctx) {
    if (!(await ctx.prompt.confirm('Replace the root and data keys and re-encrypt every secret?'))) throw new PasstoreError('cancelled', 'nothing was changed');
    const count = await ctx.vault.rekey((tx, n) => ctx.audit({ action: 'rekey', target: 'vault', outcome: 'ok', detail: `${n} secrets re-encrypted` }, tx));
    ctx.out.line(`rekeyed: ${plural(count, 'secret')} re-encrypted under a new data key; a new root key sealed to every key slot`);
  },
});
