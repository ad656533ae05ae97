import { count } from '../src/plural.js';
import { statSync } from 'node:fs';
import { replaceFile } from '../src/safe-file.js';
import { join } from 'node:path';
import { defineCommand } from '../src/command.js';
import { errorMessage, PasstoreError } from '../src/errors.js';
import { parseHost } from '../src/names.js';
import { isKeyType, JOBS_FLAG, jobsOf, KEY_TYPE_LIST, KEY_TYPES, type KeyType } from '../src/policy.js';
import { NOT_STARTED, notStartedCount, runPool } from '../src/pool.js';
import { resolveHosts } from '../src/targets.js';
import { isOpen, makeRequest } from '../src/x509/renewal.js';

export default defineCommand({
  name: 'crtreq',
  summary: 'Make a new private key and certificate request per host',
  description:
    'Generates a private key (key_type, or --type) for each host, stores it encrypted, and keeps a certificate request whose subject is that of the host\'s current certificate (a grid subject such as /DC=org/O=INFN/CN=host/FQDN is kept), or dn_template\'s for a host without one or with --template-subject, and whose subjectAltName holds the FQDN and any --san names. A host whose earlier request is still open (it may already be at the CA) is named first and replaced only after a yes, or with --replace; the replaced request is cancelled and its key kept as history. Should a passtore-cron run or another session make a request for the host meanwhile, that host is refused and keeps the one open request. --out DIR also writes each request as DIR/<fqdn>.req. The current certificate and key stay in place until the new certificate arrives.',
  usage: `crtreq HOST|PATTERN [--type ${KEY_TYPES.join('|')}] [--san NAME,...] [--out DIR] [--replace] [--template-subject] [--jobs N]`,
  args: [{ name: 'pattern', kind: 'pattern' }],
  flags: {
    type: { type: 'string', description: `key type: ${KEY_TYPE_LIST} (default from key_type)`, check: (v) => (isKeyType(v) ? undefined : `expected ${KEY_TYPE_LIST}`) },
    san: { type: 'string', description: 'extra DNS names for subjectAltName, comma-separated (one host only)' },
    out: { type: 'string', description: 'also write each request to DIR/<fqdn>.req' },
    replace: { type: 'boolean', description: 'replace a host\'s open request without asking' },
    'template-subject': { type: 'boolean', description: 'take the subject from dn_template even for a host that has a certificate' },
    jobs: JOBS_FLAG,
  },
  needs: ['unlocked'],
  audited: true,
  async run(ctx, input) {
    const pattern = input.pattern('pattern');
    const hosts = await resolveHosts(ctx.store, pattern);
    const type = (input.option('type') ?? ctx.config.keyType) as KeyType;
    const sanOption = input.option('san');
    if (sanOption && hosts.length > 1) throw new PasstoreError('usage', 'crtreq: --san names one host\'s extra names; give one host, not a pattern');
    const extra = sanOption ? sanOption.split(',').map((s) => parseHost(s.trim(), ctx.config.domain)) : [];
    const out = input.option('out');

    // The open request each host has now: replaced only when the operator says so.
    const open = new Map<number, { id: number; createdAt: string }>();
    for (const r of await ctx.store.openRequests(pattern.glob)) if (isOpen(r)) open.set(r.hostId, r);
    const withOpen = hosts.filter((h) => open.has(h.id));
    const kept = new Set<number>();
    if (withOpen.length > 0 && !input.flag('replace')) {
      const names = withOpen.slice(0, 5).map((h) => `${h.fqdn} (made ${open.get(h.id)!.createdAt.slice(0, 10)})`).join(', ') + (withOpen.length > 5 ? `, and ${withOpen.length - 5} more` : '');
      const one = withOpen.length === 1;
      const yes = await ctx.prompt.confirm(`${one ? 'This host has' : `${withOpen.length} hosts have`} an open request, which may already be at the CA: ${names}. Replace ${one ? 'it' : 'them'}?`);
      if (!yes) {
        if (withOpen.length === hosts.length) throw new PasstoreError('cancelled', `the open request${one ? ' was' : 's were'} kept; nothing was made`);
        for (const h of withOpen) kept.add(h.id);
      }
    }
    // Like backup: a missing directory is refused before any key is made, not created.
    if (out) {
      let isDir = false;
      try {
        isDir = statSync(out).isDirectory();
      } catch {
        isDir = false;
      }
      if (!isDir) throw new PasstoreError('usage', `crtreq: --out ${out} is not a directory; create it first (nothing was made)`);
    }

    const todo = hosts.filter((h) => !kept.has(h.id));
    const results = await runPool(
      todo,
      jobsOf(input, ctx.concurrency),
      async (host) => {
        const made = await makeRequest(ctx, host, type, extra, 'crtreq', undefined, open.get(host.id)?.id ?? null, input.flag('template-subject') ? 'template' : 'current');
        let where = 'kept in the vault';
        if (out) {
          const file = join(out, `${host.fqdn}.req`);
          // A request is public (0644). Written exclusive and no-follow under a random
          // name and renamed: a link planted in the directory is never followed.
          replaceFile(file, made.pem, 0o644);
          where = file;
        }
        return [host.fqdn, made.keyType, made.subject, where];
      },
      (done, total) => total > 1 && ctx.out.progress(`crtreq: ${done} of ${count(total, 'host')}`),
      // Ctrl-C: the hosts in flight finish, no other starts.
      input.signal,
    );
    // One host's failure is reported in its row; the others go on.
    const skipped = notStartedCount(results);
    const failedRuns = results.filter((r) => !r.ok && !r.notStarted);
    if (hosts.length === 1 && results[0] && !results[0].ok) throw results[0].error;
    const rows = results.map((r) => (r.ok ? r.value! : [r.item.fqdn, type, '', r.notStarted ? ctx.out.paint(NOT_STARTED, 'warn') : ctx.out.paint(`failed: ${errorMessage(r.error)}`, 'bad')]));
    for (const h of hosts.filter((x) => kept.has(x.id))) rows.push([h.fqdn, '', '', 'open request kept']);
    rows.sort((a, b) => a[0]!.localeCompare(b[0]!));
    ctx.out.table(['HOST', 'KEY', 'SUBJECT', 'REQUEST'], rows);
    if (skipped > 0) throw new PasstoreError('cancelled', `cancelled: ${todo.length - skipped - failedRuns.length} of ${count(todo.length, 'host')} have their new key and request${failedRuns.length ? `, ${failedRuns.length} failed` : ''}, ${skipped} not started (listed above)`);
    if (failedRuns.length > 0) throw new PasstoreError('partial', `crtreq failed for ${failedRuns.length} of ${hosts.length} hosts (listed above); the others have their new key and request`);
  },
});
