import { resolve } from 'node:path';
import { defineCommand } from '../src/command.js';
import { buildSnapshot, currentSchema, writeCopy } from '../src/backup.js';
import { errorMessage, PasstoreError } from '../src/errors.js';

export default defineCommand({
  name: 'backup',
  summary: 'Write verified, encrypted copies of the whole vault to offline media',
  description:
    'Writes one snapshot of the whole vault (every table; the body encrypted under a key derived from the root key, the secrets inside still encrypted under the data key; the key slots in the header so the operators\' passphrases open it) with a manifest of its SHA-256 to each DIR, as passtore-<UTC stamp>/, written under a temporary name and renamed, then read back and checked. The CA\'s two copies on two separate devices are one command: backup /media/a /media/b. Restore with passtore restore DIR.',
  usage: 'backup DIR [DIR...]',
  args: [{ name: 'dir', kind: 'path' }],
  variadic: true,
  needs: ['unlocked'],
  audited: true,
  async run(ctx, input) {
    const dirs = input.rest().map((d) => resolve(d));
    ctx.out.progress('backup: reading the vault');
    const rows = await ctx.store.exportRows();
    const root = ctx.vault.rootKeyCopy();
    let snapshot;
    try {
      snapshot = buildSnapshot(rows, root, ctx.vault.id, currentSchema(ctx.store.dialect), ctx.vault.auditKey());
    } finally {
      root.fill(0);
    }
    const results: string[][] = [];
    let failed = 0;
    for (const dir of dirs) {
      ctx.out.progress(`backup: writing ${dir}`);
      try {
        const path = writeCopy(dir, snapshot.bytes, snapshot.manifest);
        await ctx.audit({ action: 'backup', target: dir, outcome: 'ok', detail: `${snapshot.manifest.sha256.slice(0, 16)} ${snapshot.bytes.length} bytes` });
        results.push([dir, path, 'written, read back, verified']);
      } catch (e) {
        failed++;
        await ctx.audit({ action: 'backup', target: dir, outcome: 'failed', detail: e instanceof PasstoreError ? e.message.slice(0, 200) : 'error' }).catch(() => undefined);
        results.push([dir, '', ctx.out.paint(`failed: ${errorMessage(e)}`, 'bad')]);
      }
    }
    const rowCount = Object.values(snapshot.manifest.rows).reduce((a, b) => a + b, 0);
    ctx.out.table(['MEDIUM', 'COPY', 'RESULT'], results);
    ctx.out.line(`snapshot: ${rowCount} rows, ${snapshot.bytes.length} bytes, SHA-256 ${snapshot.manifest.sha256}`);
    if (failed > 0) throw new PasstoreError('partial', `${failed} of ${dirs.length} copies failed (listed above)`);
  },
});
