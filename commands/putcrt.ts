import { count } from '../src/plural.js';
import { defineCommand } from '../src/command.js';
import { errorMessage, PasstoreError } from '../src/errors.js';
import { NOT_STARTED, notStartedCount, runPool } from '../src/pool.js';
import { JOBS_FLAG, jobsOf } from '../src/policy.js';
import { deployHost } from '../src/remote/deploy.js';
import { resolveHosts } from '../src/targets.js';

export default defineCommand({
  name: 'putcrt',
  summary: 'Deploy the key and certificate to their host, and only there',
  description:
    'For each host, checks that its current certificate matches its private key and names the host, before any connection; then, through the network guard and over SSH with the pinned host key and the stored root password, writes both as new files in crt_path, gives them mode 0644 (hostcert.pem) and 0400 (hostkey.pem), owner root, keeps the previous pair as dated backups, renames the new pair into place, and reads both back to compare their SHA-256. With a pattern, several hosts are done at once, with a progress line and a result table; the exit status is 1 if any failed.',
  usage: 'putcrt HOST|PATTERN [--force] [--jobs N]',
  args: [{ name: 'pattern', kind: 'pattern' }],
  flags: {
    force: { type: 'boolean', description: 'deploy an expired certificate too' },
    jobs: JOBS_FLAG,
  },
  needs: ['unlocked'],
  audited: true,
  async run(ctx, input) {
    const hosts = await resolveHosts(ctx.store, input.pattern('pattern'));
    const force = input.flag('force');
    const results = await runPool(
      hosts,
      jobsOf(input, ctx.concurrency),
      // Ctrl-C while a host's SSH connection is being made gives up that host, nothing sent.
      (host) => deployHost(ctx, host, force, input.signal),
      (done, total) => total > 1 && ctx.out.progress(`putcrt: ${done} of ${total} hosts`),
      // Ctrl-C: the hosts in flight finish, no other starts.
      input.signal,
    );
    const skipped = notStartedCount(results);
    const failed = results.filter((r) => !r.ok && !r.notStarted);
    if (hosts.length === 1 && results[0]!.notStarted) throw new PasstoreError('cancelled', 'cancelled; nothing deployed');
    if (hosts.length === 1 && !results[0]!.ok) throw results[0]!.error;
    if (hosts.length === 1) {
      ctx.out.line(`${hosts[0]!.fqdn}: ${results[0]!.value}`);
      return;
    }
    ctx.out.table(['HOST', 'RESULT'], results.map((r) => [r.item.fqdn, r.ok ? ctx.out.paint(String(r.value), 'good') : r.notStarted ? ctx.out.paint(NOT_STARTED, 'warn') : ctx.out.paint(`failed: ${errorMessage(r.error)}`, 'bad')]));
    if (skipped > 0) throw new PasstoreError('cancelled', `cancelled: deployed to ${hosts.length - skipped - failed.length} of ${count(hosts.length, 'host')}${failed.length ? `, ${failed.length} failed` : ''}, ${skipped} not started (listed above)`);
    if (failed.length > 0) throw new PasstoreError('partial', `putcrt failed for ${failed.length} of ${count(hosts.length, 'host')} (listed above)`);
    ctx.out.line(`deployed to ${count(hosts.length, 'host')}`);
  },
});
