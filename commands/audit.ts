import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { globToRegExp } from '../src/names.js';
import { verifyChain } from '../src/vault/audit.js';

const count = (v: string) => (/^\d{1,7}$/.test(v) && Number(v) > 0 ? undefined : 'expected a positive whole number');

export default defineCommand({
  name: 'audit',
  summary: 'Who did what, when; --verify checks the hash chain',
  description:
    'Shows the audit trail (the last 100 records, or --last N), only records naming hosts that match PATTERN when one is given. --verify checks the whole chain: no record edited, removed or reordered, and every sealed record\'s HMAC.',
  usage: 'audit [PATTERN] [--verify] [--last N]',
  args: [{ name: 'pattern', kind: 'pattern', optional: true }],
  flags: {
    verify: { type: 'boolean', description: 'check the hash chain and the seals of the whole trail' },
    last: { type: 'string', description: 'how many records to show (default 100)', check: count },
  },
  needs: ['unlocked'],
  usesNoSecret: true,
  async run(ctx, input) {
    if (input.flag('verify')) {
      const rows = await ctx.store.listAudit();
      const report = verifyChain(rows, ctx.vault.auditKey()!, (await ctx.store.getVault())?.auditHead);
      if (report.problems.length > 0) {
        for (const p of report.problems) ctx.out.line(`audit: ${p}`);
        await ctx.audit({ action: 'audit-verify', target: 'audit', outcome: 'failed', detail: `${report.problems.length} problems` });
        throw new PasstoreError('integrity', `audit trail damaged: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} in ${report.records} records`);
      }
      await ctx.audit({ action: 'audit-verify', target: 'audit', outcome: 'ok' });
      ctx.out.line(`audit trail intact: ${report.records} records, ${report.macs} sealed`);
      return;
    }
    const limit = Number(input.option('last') ?? 100);
    let rows;
    if (input.has('pattern')) {
      const re = globToRegExp(input.pattern('pattern').glob);
      const hostOf = (target: string) => target.replace(/^[^@]*@/, '').replace(/:.*$/, '');
      rows = (await ctx.store.listAudit()).filter((r) => input.pattern('pattern').glob === '*' || re.test(hostOf(r.target))).slice(-limit);
    } else rows = await ctx.store.listAudit({ limit });
    ctx.out.table(
      ['SEQ', 'TIME (UTC)', 'OPERATOR', 'ACTION', 'TARGET', 'OUTCOME'],
      rows.map((r) => [String(r.seq), r.at.slice(0, 19).replace('T', ' '), r.operator, r.action, r.target, r.outcome + (r.detail ? `: ${r.detail}` : '')]),
    );
  },
});
