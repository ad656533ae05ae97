import { defineCommand } from '../src/command.js';
import { errorMessage, PasstoreError } from '../src/errors.js';
import { NOT_STARTED, notStartedCount, runPool } from '../src/pool.js';
import { JOBS_FLAG } from '../src/policy.js';
import { createKey, currentKey, installKey, rotateKeys } from '../src/remote/deploy-keys.js';
import { resolveHosts } from '../src/targets.js';

const jobs = JOBS_FLAG;

export default defineCommand({
  name: 'sshkey',
  summary: 'The vault-held SSH deploy key: create, show, install, rotate',
  description:
    'sshkey create makes an Ed25519 deploy key; its private half is stored encrypted in the vault like every other secret and is only ever handed to SSH from memory. sshkey show prints its public half as one authorized_keys line. sshkey install appends that line, once, to the login user\'s ~/.ssh/authorized_keys on each host (directory 0700, file 0600, nothing else in the file changed), logging in as usual. From then on every remote operation authenticates with the key first and sends the stored password only where the key is refused. sshkey rotate makes a new key, installs it on each host over the old one, proves a login with it, removes the old line, and lists the hosts it could not reach: those keep the old key, which passtore still tries.',
  subcommands: {
    create: {
      usage: 'sshkey create',
      summary: 'Make the deploy key (Ed25519, kept encrypted in the vault)',
      args: [],
      needs: ['unlocked'],
      audited: true,
      async run(ctx) {
        const existing = (await ctx.store.listSshKeys()).find((k) => k.state === 'current');
        if (existing) throw new PasstoreError('exists', `the vault already holds the deploy key ${existing.fingerprint}; use sshkey rotate to replace it`);
        const key = await createKey(ctx, 'current');
        ctx.out.line(`created the deploy key ${key.fingerprint}`);
        ctx.out.line(key.publicKey);
      },
    },
    show: {
      usage: 'sshkey show',
      summary: 'Print the deploy key\'s public half as an authorized_keys line',
      args: [],
      needs: ['unlocked'],
      async run(ctx) {
        ctx.out.line((await currentKey(ctx)).publicKey);
      },
    },
    install: {
      usage: 'sshkey install HOST|PATTERN [--jobs N]',
      summary: 'Append the deploy key to the login user\'s authorized_keys on hosts',
      args: [{ name: 'pattern', kind: 'pattern' }],
      flags: { jobs },
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const key = await currentKey(ctx);
        const hosts = await resolveHosts(ctx.store, input.pattern('pattern'));
        const results = await runPool(hosts, Number(input.option('jobs') ?? ctx.concurrency), (h) => installKey(ctx, h, key, input.signal), (done, total) => total > 1 && ctx.out.progress(`sshkey install: ${done} of ${total} hosts`), input.signal);
        const skipped = notStartedCount(results);
        const failed = results.filter((r) => !r.ok && !r.notStarted);
        if (hosts.length === 1 && results[0]!.notStarted) throw new PasstoreError('cancelled', 'cancelled; nothing installed');
        if (hosts.length === 1 && !results[0]!.ok) throw results[0]!.error;
        if (hosts.length === 1) return ctx.out.line(`${hosts[0]!.fqdn}: ${results[0]!.value}`);
        ctx.out.table(['HOST', 'RESULT'], results.map((r) => [r.item.fqdn, r.ok ? ctx.out.paint(String(r.value), 'good') : r.notStarted ? ctx.out.paint(NOT_STARTED, 'warn') : ctx.out.paint(`failed: ${errorMessage(r.error)}`, 'bad')]));
        if (skipped > 0) throw new PasstoreError('cancelled', `cancelled: installed on ${hosts.length - skipped - failed.length} of ${hosts.length} hosts${failed.length ? `, ${failed.length} failed` : ''}, ${skipped} not started (listed above)`);
        if (failed.length > 0) throw new PasstoreError('partial', `sshkey install failed for ${failed.length} of ${hosts.length} hosts (listed above)`);
      },
    },
    rotate: {
      usage: 'sshkey rotate [PATTERN] [--jobs N]',
      summary: 'Replace the deploy key on every host (all hosts without a pattern)',
      args: [{ name: 'pattern', kind: 'pattern', optional: true }],
      flags: { jobs },
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const hosts = (await resolveHosts(ctx.store, input.has('pattern') ? input.pattern('pattern') : { glob: '*', wild: true })).filter((h) => h.sshHostKey);
        const { results, fresh, old } = await rotateKeys(ctx, hosts, Number(input.option('jobs') ?? ctx.concurrency), (done, total) => total > 1 && ctx.out.progress(`sshkey rotate: ${done} of ${total} hosts`), input.signal);
        ctx.out.table(['HOST', 'RESULT'], results.map((r) => [r.item.fqdn, r.ok ? ctx.out.paint(String(r.value), 'good') : r.notStarted ? ctx.out.paint(`${NOT_STARTED}; it keeps the old key`, 'warn') : ctx.out.paint(`not rotated: ${errorMessage(r.error)}; it keeps the old key`, 'bad')]));
        ctx.out.line(`the deploy key is now ${fresh.fingerprint} (was ${old.fingerprint})`);
        const failed = results.filter((r) => !r.ok);
        const skipped = notStartedCount(results);
        if (skipped > 0) throw new PasstoreError('cancelled', `cancelled: rotated on ${hosts.length - failed.length} of ${hosts.length} hosts, ${skipped} not started; passtore keeps trying the old key there (run sshkey rotate again)`);
        if (failed.length > 0) throw new PasstoreError('partial', `sshkey rotate did not reach ${failed.length} of ${hosts.length} hosts; passtore keeps trying the old key there (run sshkey rotate again)`);
      },
    },
  },
});
