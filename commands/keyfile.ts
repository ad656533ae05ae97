import { closeSync, openSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';

export default defineCommand({
  name: 'keyfile',
  summary: 'Create a key file slot for passtore-cron (mode 0400)',
  description:
    'keyfile create PATH writes 256 random bits to a new file PATH (mode 0400; an existing file is never overwritten) and adds a key slot that the file opens. passtore-cron unlocks with it (keyfile = PATH). Keep it on the vault machine only.',
  subcommands: {
    create: {
      usage: 'keyfile create PATH',
      summary: 'Write a new key file and add its slot',
      args: [{ name: 'path', kind: 'path' }],
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const path = resolve(input.word('path'));
        let fd: number | undefined;
        try {
          await ctx.change(async (tx) => {
            const content = await ctx.vault.addKeyfileSlot(tx, path, ctx.operator);
            try {
              fd = openSync(path, 'wx', 0o400);
              writeSync(fd, content);
              fsyncSync(fd);
            } catch (e) {
              const code = (e as NodeJS.ErrnoException).code;
              throw new PasstoreError('io', code === 'EEXIST' ? `${path} already exists; a key file is never overwritten` : `cannot write ${path} (${code})`);
            } finally {
              content.fill(0);
              if (fd !== undefined) closeSync(fd);
            }
            await ctx.audit({ action: 'keyfile-create', target: `keyfile:${path}`, outcome: 'ok' }, tx);
          });
        } catch (e) {
          // The slot was rolled back: remove the file we wrote so nothing half-made stays.
          if (fd !== undefined) unlinkSync(path);
          throw e;
        }
        ctx.out.line(`wrote key file ${path} (mode 0400) and added its slot`);
      },
    },
  },
});
