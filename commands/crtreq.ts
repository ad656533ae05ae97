import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand } from '../src/command.js';
import type { KeyType } from '../src/config.js';
import { formatError, PasstoreError } from '../src/errors.js';
import { parseHost } from '../src/names.js';
import { resolveHosts } from '../src/targets.js';
import { makeRequest } from '../src/x509/renewal.js';

const KEY_TYPES = ['rsa-2048', 'rsa-4096', 'ec-p256'];
/** Keys made at once: key generation runs on libuv's thread pool. */
const CONCURRENCY = 4;

export default defineCommand({
  name: 'crtreq',
  summary: 'Make a new private key and certificate request per host',
  description:
    'Generates a private key (key_type, or --type) for each host, stores it encrypted, and keeps a certificate request whose subject is that of the host\'s current certificate (a grid subject such as /DC=org/O=INFN/CN=host/FQDN is kept), or dn_template\'s for a host without one or with --template-subject, and whose subjectAltName holds the FQDN and any --san names. A host\'s earlier open request is cancelled; its key is kept as history. --out DIR also writes each request as DIR/<fqdn>.req. The current certificate and key stay in place until the new certificate arrives.',
  usage: 'crtreq HOST|PATTERN [--type rsa-2048|rsa-4096|ec-p256] [--san NAME,...] [--out DIR] [--template-subject]',
  args: [{ name: 'pattern', kind: 'pattern' }],
  flags: {
    type: { type: 'string', description: 'key type: rsa-2048 (default from key_type), rsa-4096 or ec-p256', check: (v) => (KEY_TYPES.includes(v) ? undefined : 'expected rsa-2048, rsa-4096 or ec-p256') },
    san: { type: 'string', description: 'extra DNS names for subjectAltName, comma-separated (one host only)' },
    out: { type: 'string', description: 'also write each request to DIR/<fqdn>.req' },
    'template-subject': { type: 'boolean', description: 'take the subject from dn_template even for a host that has a certificate' },
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
    if (out) mkdirSync(out, { recursive: true });

    const rows: string[][] = [];
    let failed = 0;
    let firstError: unknown;
    let done = 0;
    const queue = [...hosts];
    const worker = async () => {
      for (let host = queue.shift(); host; host = queue.shift()) {
        try {
          const made = await makeRequest(ctx, host, type, extra, 'crtreq', undefined, input.flag('template-subject') ? 'template' : 'current');
          let where = 'kept in the vault';
          if (out) {
            const file = join(out, `${host.fqdn}.req`);
            writeFileSync(`${file}.tmp`, made.pem);
            chmodSync(`${file}.tmp`, 0o644); // a request is public; passtore's umask is 077
            renameSync(`${file}.tmp`, file);
            where = file;
          }
          rows.push([host.fqdn, made.keyType, made.subject, where]);
        } catch (e) {
          // One host's failure is reported in its row; the others go on.
          failed++;
          firstError ??= e;
          rows.push([host.fqdn, type, '', ctx.out.paint(formatError(e).replace(/^error: /, 'failed: '), 'bad')]);
        }
        done++;
        if (hosts.length > 1) ctx.out.progress(`crtreq: ${done} of ${hosts.length} hosts`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, hosts.length) }, worker));
    if (hosts.length === 1 && firstError) throw firstError;
    rows.sort((a, b) => a[0]!.localeCompare(b[0]!));
    ctx.out.table(['HOST', 'KEY', 'SUBJECT', 'REQUEST'], rows);
    if (failed > 0) throw new PasstoreError('partial', `crtreq failed for ${failed} of ${hosts.length} hosts (listed above); the others have their new key and request`);
  },
});
