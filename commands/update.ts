import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { formatSpec } from '../src/names.js';
import { Secret } from '../src/secret.js';
import { now, resolveEntries } from '../src/targets.js';
import { NOT_STARTED, notStartedCount, runPool } from '../src/pool.js';
import { JOBS_FLAG, jobsOf } from '../src/policy.js';
import { changeOnHost } from '../src/remote/password.js';
import { unreachableBecause } from '../src/remote/preflight.js';
import { errorMessage } from '../src/errors.js';
import type { HistoryRow } from '../src/storage/store.js';
import type { AuditEvent } from '../src/vault/audit.js';

export default defineCommand({
  name: 'update',
  aliases: ['u'],
  summary: 'Change a stored password (old one asked first)',
  description:
    'Asks the old password first, as passwd does, and checks it against the vault; then asks the new one twice, or with --generate makes a strong random password for each entry. For root@HOST:ssh (or with --remote, any USER@HOST:ssh) the password is changed on the host too: stored as pending, sent to chpasswd on standard input over SSH (logged in as root), confirmed by a fresh login, then made current; an interrupted change is resolved by reconcile. --local changes the vault copy only. The old password is kept in the entry history. With a pattern, every matching entry whose stored password equals the old one is updated, several hosts at once, with a per-host result table.',
  usage: 'update SPEC [--generate] [--remote|--local] [--jobs N]',
  args: [{ name: 'spec', kind: 'spec-pattern' }],
  flags: {
    generate: { type: 'boolean', description: 'make a strong random password (24 characters) per entry instead of asking' },
    remote: { type: 'boolean', description: 'change it on the host too (the default for root@HOST:ssh)' },
    local: { type: 'boolean', description: 'change only the copy in the vault' },
    jobs: JOBS_FLAG,
  },
  needs: ['unlocked'],
  asksSecret: true,
  audited: true,
  async run(ctx, input) {
    const spec = input.specPattern('spec');
    const entries = await resolveEntries(ctx.store, spec);
    const label = `${spec.user}@${spec.host.glob}:${spec.service}`;
    // Everything that can be checked is checked before the first prompt.
    if (input.flag('remote') && input.flag('local')) throw new PasstoreError('usage', 'update: --remote and --local exclude each other');
    const remote = input.flag('local') ? false : input.flag('remote') || (spec.user === 'root' && spec.service === 'ssh');
    if (remote && spec.service !== 'ssh') throw new PasstoreError('usage', 'update --remote changes system accounts (:ssh entries) only');
    if (remote) {
      const problems = [];
      for (const e of entries) {
        const why = await unreachableBecause((await ctx.store.getHost(e.fqdn))!, 'update --local to change only the vault\'s copy');
        if (why) problems.push(why);
      }
      if (problems.length === entries.length) {
        throw entries.length === 1 ? problems[0]! : new PasstoreError('policy', `none of the ${entries.length} hosts can be reached (${problems[0]!.message})`);
      }
    }
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
    if (remote) {
      try {
        const outcomes = await runPool(
          accepted,
          jobsOf(input, ctx.concurrency),
          async (e) => {
            const host = await ctx.store.getHost(e.fqdn);
            const fresh = shared ?? Secret.generate();
            try {
              // Ctrl-C while SSH connects gives up that host, its password unchanged.
              await changeOnHost(ctx, host!, e, fresh, input.signal);
            } finally {
              if (!shared) fresh.wipe();
            }
          },
          (done, total) => total > 1 && ctx.out.progress(`update: ${done} of ${total} hosts`),
          // Ctrl-C: the changes in flight finish, no other starts.
          input.signal,
        );
        for (const o of outcomes) results.set(o.item.id, o.ok ? 'changed on the host and in the vault' : o.notStarted ? ctx.out.paint(`${NOT_STARTED}; unchanged`, 'warn') : ctx.out.paint(`failed: ${errorMessage(o.error)}`, 'bad'));
        const skipped = notStartedCount(outcomes);
        const failedRemote = outcomes.filter((o) => !o.ok);
        if (entries.length === 1 && failedRemote.length === 1) throw failedRemote[0]!.error;
        if (entries.length === 1) {
          ctx.out.line(`updated ${formatSpec(entries[0]!)} on the host and in the vault`);
          return;
        }
        ctx.out.table(['ENTRY', 'RESULT'], entries.map((e) => [formatSpec(e), results.get(e.id)!]));
        const notDone = entries.length - accepted.length + failedRemote.length;
        if (skipped > 0) throw new PasstoreError('cancelled', `cancelled: ${notDone} of ${entries.length} entries were not updated, ${skipped} of them not started (listed above)`);
        if (notDone > 0) throw new PasstoreError('partial', `${notDone} of ${entries.length} entries were not updated`);
        return;
      } finally {
        shared?.wipe();
      }
    }
    try {
      await ctx.change(async (tx) => {
        // A pattern is written with few round trips: one version lookup, then the
        // updates (each still checked against the version it was read at), the history
        // rows and the audit records in multi-row statements.
        const versions = await tx.lastVersions(accepted.map((e) => e.fqdn), spec.user, spec.service);
        const history: Array<Omit<HistoryRow, 'id'>> = [];
        const updates: Parameters<typeof tx.updateEntries>[0] = [];
        const events: AuditEvent[] = [];
        for (const e of accepted) {
          const fresh = shared ?? Secret.generate();
          try {
            const version = versions.get(e.fqdn)! + 1;
            if (e.secretCiphertext) history.push({ fqdn: e.fqdn, user: e.user, service: e.service, version: e.version, secretCiphertext: e.secretCiphertext, reason: 'updated', archivedAt: now(), archivedBy: ctx.operator });
            updates.push({ id: e.id, expectVersion: e.version, row: { version, state: 'set', secretCiphertext: ctx.vault.sealPassword({ fqdn: e.fqdn, user: e.user, service: e.service, version }, fresh), updatedAt: now(), updatedBy: ctx.operator } });
            events.push({ action: 'update', target: formatSpec(e), outcome: 'ok', detail: generate ? 'generated' : '' });
          } finally {
            if (!shared) fresh.wipe();
          }
        }
        await tx.updateEntries(updates);
        await tx.archiveEntries(history);
        await ctx.audit(events, tx);
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
