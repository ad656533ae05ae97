import { PASSPHRASE_MIN } from '../src/policy.js';
import { defineCommand } from '../src/command.js';
import type { Output } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { parseKdf } from '../src/vault/kdf.js';
import { slotSeal } from '../src/vault/keyring.js';
import type { SlotRow } from '../src/storage/store.js';

/** A slot's key derivation, with a weaker-than-default scrypt cost made visible. */
function describeKdf(text: string, out: Output): string {
  try {
    const k = parseKdf(text);
    if (k.alg !== 'scrypt') return 'HKDF-SHA256 (key file)';
    const label = `scrypt N=2^${Math.log2(k.N)} r=${k.r} p=${k.p}`;
    return k.N < 2 ** 17 ? out.paint(`${label} (below the default 2^17: passwd raises it)`, 'warn') : label;
  } catch {
    return out.paint('unreadable', 'bad');
  }
}

/**
 * Which root key a slot holds: the current one; one older than the last rekey (a slot
 * the rekey did not rewrap: copied back or restored); or the old format (before schema 8),
 * which must be unlocked once before rekey can seal to it.
 */
function describeRoot(slot: SlotRow, generation: number, rekeyedAt: string | null, out: Output): string {
  let seal;
  try {
    seal = slotSeal(slot.kdf);
  } catch {
    return out.paint('unreadable', 'bad');
  }
  if (!seal) return out.paint('old format: unlock with it once before rekey', 'warn');
  if (seal.gen < generation) return out.paint(`older than the last rekey (${rekeyedAt?.slice(0, 10) ?? 'unknown'})`, 'bad');
  return slot.createdAt < (rekeyedAt ?? '') ? 'current (rewrapped by the last rekey)' : 'current';
}

export default defineCommand({
  name: 'operator',
  summary: 'Manage operators (one passphrase key slot each): add, rm, list',
  description:
    'Each operator has a key slot of their own, opened by their own passphrase; the audit trail names the operator. operator add asks the new operator\'s passphrase twice (they type it at the console). operator rm refuses to remove the last passphrase slot.',
  subcommands: {
    add: {
      usage: 'operator add NAME',
      summary: 'Add an operator with their own passphrase',
      args: [{ name: 'name', kind: 'operator' }],
      needs: ['unlocked'],
      asksSecret: true,
      audited: true,
      async run(ctx, input) {
        const name = input.word('name');
        if (await ctx.store.getSlot('passphrase', name)) throw new PasstoreError('exists', `operator '${name}' already has a key slot`);
        const passphrase = await ctx.newSecret(`New passphrase for operator ${name}`, PASSPHRASE_MIN);
        try {
          await ctx.change(async (tx) => {
            await ctx.vault.addPassphraseSlot(tx, name, passphrase, ctx.operator);
            await ctx.audit({ action: 'operator-add', target: `operator:${name}`, outcome: 'ok' }, tx);
          });
        } finally {
          passphrase.wipe();
        }
        ctx.out.line(`added operator ${name}`);
      },
    },
    rm: {
      usage: 'operator rm NAME',
      summary: 'Remove an operator\'s key slot',
      args: [{ name: 'name', kind: 'operator' }],
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const name = input.word('name');
        const slots = await ctx.store.listSlots();
        const slot = slots.find((s) => s.kind === 'passphrase' && s.name === name);
        if (!slot) throw new PasstoreError('not-found', `no operator '${name}'`);
        if (slots.filter((s) => s.kind === 'passphrase').length === 1) throw new PasstoreError('policy', `'${name}' holds the last passphrase slot; add another operator first`);
        if (!(await ctx.prompt.confirm(`Remove operator ${name}${name === ctx.operator ? ' (yourself)' : ''}?`))) throw new PasstoreError('cancelled', 'nothing was removed');
        await ctx.change(async (tx) => {
          await tx.deleteSlot(slot.id);
          await ctx.audit({ action: 'operator-rm', target: `operator:${name}`, outcome: 'ok' }, tx);
        });
        ctx.out.line(`removed operator ${name}; run rekey to cut them off: until then a copy of the database or of a backup made before holds their slot, and it opens the vault's current keys`);
      },
    },
    list: {
      usage: 'operator list',
      summary: 'List key slots',
      args: [],
      needs: ['unlocked'],
      async run(ctx) {
        const slots = await ctx.store.listSlots();
        const rekeyedAt = ctx.vault.rekeyedAt;
        ctx.out.table(
          ['KIND', 'NAME', 'KEY DERIVATION', 'CREATED', 'BY', 'FAILED UNLOCKS', 'ROOT KEY'],
          slots.map((s) => [s.kind, s.name, describeKdf(s.kdf, ctx.out), s.createdAt.slice(0, 16).replace('T', ' '), s.createdBy, String(s.failedAttempts), describeRoot(s, ctx.vault.rootGeneration, rekeyedAt, ctx.out)]),
        );
        ctx.out.line(rekeyedAt ? `root key last replaced by rekey at ${rekeyedAt.slice(0, 16).replace('T', ' ')}` : 'the root key was never replaced (no rekey since this passtore version)');
        // Operators removed since then still open the current keys from any earlier copy.
        const since = rekeyedAt ?? '';
        const removed = (await ctx.store.listAudit({ targetLike: 'operator:%' })).filter((r) => r.action === 'operator-rm' && r.outcome === 'ok' && r.at > since).map((r) => r.target.slice('operator:'.length));
        if (removed.length > 0) ctx.out.line(ctx.out.paint(`removed since the last rekey: ${[...new Set(removed)].join(', ')}; run rekey to cut them off`, 'warn'));
      },
    },
  },
});
