import { count } from '../src/plural.js';
import { defineCommand } from '../src/command.js';
import { errorMessage, notFound, PasstoreError } from '../src/errors.js';
import { notStartedCount, runPool } from '../src/pool.js';
import { driftOf } from '../src/remote/drift.js';
import { shortName } from '../src/names.js';
import { daysLeft } from '../src/x509/certificate.js';
import { renderTimeline, timelineBuckets } from '../src/x509/timeline.js';

export default defineCommand({
  name: 'lcrt',
  summary: 'Certificate status per host: expiry, key match, renewal, deploy',
  description:
    'One line per host with a current certificate or an open request: subject, serial, not-after, days left (red once expired, yellow within crt_ttl days, green otherwise; plain with NO_COLOR), whether the stored key matches the certificate, the renewal state (an open request), and the last deployment. On a narrow terminal the subject, then the serial, then the deploy date are shortened or left out. With --remote, each deployed host\'s files (those of its deploy profiles) are also read back over SSH, changing nothing, and compared with the vault\'s current pair, mode and owner. With --timeline, a bar chart instead: the certificates expiring in each of the next 13 weeks, then in each month, marked by state (x expired, # due within crt_ttl days, + renewal open, = later).',
  usage: 'lcrt [PATTERN] [--remote] [--timeline]',
  args: [{ name: 'pattern', kind: 'pattern', optional: true }],
  flags: {
    remote: { type: 'boolean', description: 'read back the deployed files on each host and show drift' },
    timeline: { type: 'boolean', description: 'a bar chart of the certificates expiring per week for 13 weeks, then per month, by state' },
  },
  needs: ['unlocked'],
  usesNoSecret: (input) => !input.flag('remote'),
  async run(ctx, input) {
    const glob = input.has('pattern') ? input.pattern('pattern').glob : '*';
    const [certs, requests] = await Promise.all([ctx.store.currentCertificates(glob), ctx.store.openRequests(glob)]);
    const open = new Map(requests.map((r) => [r.fqdn, r]));
    const hosts = [...new Set([...certs.map((c) => c.fqdn), ...open.keys()])].sort();
    if (hosts.length === 0) throw notFound(glob === '*' ? 'no certificates in the vault yet' : `no certificate or request for hosts matching ${glob}`);
    const now = Date.now();
    if (input.flag('timeline')) {
      const buckets = timelineBuckets(certs, new Set(open.keys()), now, ctx.config.crtTtl);
      for (const l of renderTimeline(buckets, ctx.out.columns ?? 80, (t, tone) => ctx.out.paint(t, tone), ctx.config.crtTtl)) ctx.out.line(l);
      ctx.out.line(`${certs.length} certificates; ${requests.length} open requests`);
      return;
    }
    const byHost = new Map(certs.map((c) => [c.fqdn, c]));
    let expired = 0;
    let soon = 0;
    const rows = hosts.map((fqdn) => {
      const c = byHost.get(fqdn);
      const r = open.get(fqdn);
      const renewal = r ? `request ${r.state} ${r.createdAt.slice(0, 10)}` : '-';
      const name = shortName(fqdn, ctx.config.domain);
      if (!c) return [name, '(no certificate)', '', '', '', '', renewal, ''];
      const days = daysLeft(c.notAfter, now);
      const tone = days < 0 ? 'bad' : days <= ctx.config.crtTtl ? 'warn' : 'good';
      if (days < 0) expired++;
      else if (days <= ctx.config.crtTtl) soon++;
      const match = c.keySpkiSha256 === c.spkiSha256 ? ctx.out.paint('yes', 'good') : ctx.out.paint('NO', 'bad');
      return [name, c.subject, c.serial, c.notAfter.slice(0, 10), ctx.out.paint(days < 0 ? `expired ${-days}d ago` : String(days), tone), match, renewal, c.deployedAt ? c.deployedAt.slice(0, 10) : 'never'];
    });
    const head = ['HOST', 'SUBJECT', 'SERIAL', 'NOT AFTER', 'DAYS', 'KEY', 'RENEWAL', 'DEPLOYED'];
    /** Hosts a Ctrl-C kept --remote from reading. */
    let unread = 0;
    if (input.flag('remote')) {
      // Read back, never changed: the files of each deployed host's profiles.
      const results = await runPool(hosts, ctx.concurrency, async (fqdn) => {
        const c = byHost.get(fqdn);
        if (!c?.deployedAt) return '-';
        const problems = await driftOf(ctx, (await ctx.store.getHost(fqdn))!, input.signal);
        return problems.length ? ctx.out.paint(`DRIFT: ${problems.join('; ')}`, 'bad') : ctx.out.paint('matches the vault', 'good');
      }, (done, total) => total > 1 && ctx.out.progress(`lcrt --remote: ${done} of ${count(total, 'host')}`), input.signal);
      head.push('ON HOST');
      results.forEach((r, i) => rows[i]!.push(r.ok ? String(r.value) : r.notStarted ? ctx.out.paint('not read (cancelled)', 'warn') : ctx.out.paint(`not read: ${errorMessage(r.error)}`, 'bad')));
      unread = notStartedCount(results);
    }
    // On a narrow terminal the subject goes first, then the serial, then the deploy date.
    ctx.out.table(head, rows, { shrink: [1, 2, 6], drop: [1, 2, 7] });
    ctx.out.line(`${count(certs.length, 'certificate')}: ${expired} expired, ${soon} within ${count(ctx.config.crtTtl, 'day')}; ${count(requests.length, 'open request')}`);
    if (unread > 0) throw new PasstoreError('cancelled', `cancelled: ${unread} of ${count(hosts.length, 'host')} not read (listed above)`);
  },
});
