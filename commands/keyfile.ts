import { resolve } from 'node:path';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { writeNewFile } from '../src/safe-file.js';

export default defineCommand({
  name: 'keyfile',
  summary: 'Key file slots for passtore-cron: create (mode 0400), list, rm',
  description:
    'keyfile create PATH writes 256 random bits to a new file PATH (mode 0400; an existing file or a link is never overwritten) and adds a key slot that the file opens. A key file opens the whole vault without a passphrase: keyfile create runs only when typed at the terminal, never from a script, and asks for your passphrase again first. passtore-cron unlocks with it (keyfile = PATH). Keep it on the vault machine only. keyfile list shows the key file slots; keyfile rm PATH removes one (the file no longer opens the vault; run rekey so a copy of the old database cannot be opened with it either).',
  subcommands: {
    create: {
      usage: 'keyfile create PATH',
      summary: 'Write a new key file and add its slot (terminal only; asks your passphrase again)',
      args: [{ name: 'path', kind: 'path' }],
      needs: ['unlocked'],
      terminalOnly: true,
      audited: true,
      async run(ctx, input) {
        const path = resolve(input.word('path'));
        const passphrase = await ctx.prompt.secret(`Passphrase for ${ctx.operator} (again, to create a key file)`);
        try {
          if (!(await ctx.vault.checkPassphrase(ctx.operator, passphrase))) throw new PasstoreError('bad-passphrase', 'wrong passphrase; no key file was created');
        } finally {
          passphrase.wipe();
        }
        let written = false;
        try {
          await ctx.change(async (tx) => {
            const content = await ctx.vault.addKeyfileSlot(tx, path, ctx.operator);
            try {
              writeNewFile(path, content, 0o400);
              written = true;
            } catch (e) {
              const code = (e as NodeJS.ErrnoException).code;
              throw new PasstoreError('io', code === 'EEXIST' || code === 'ELOOP' ? `${path} already exists; a key file is never overwritten` : `cannot write ${path} (${code})`);
            } finally {
              content.fill(0);
            }
            await ctx.audit({ action: 'keyfile-create', target: `keyfile:${path}`, outcome: 'ok' }, tx);
          });
        } catch (e) {
          // The slot was rolled back: remove the file we wrote so nothing half-made stays.
          if (written) (await import('node:fs')).unlinkSync(path);
          throw e;
        }
        ctx.out.line(`wrote key file ${path} (mode 0400) and added its slot`);
      },
    },
    list: {
      usage: 'keyfile list',
      summary: 'List the key file slots',
      args: [],
      needs: ['unlocked'],
      async run(ctx) {
        const slots = (await ctx.store.listSlots()).filter((s) => s.kind === 'keyfile');
        if (slots.length === 0) {
          ctx.out.line('no key file slots');
          return;
        }
        ctx.out.table(
          ['KEY FILE', 'CREATED', 'BY', 'FAILED UNLOCKS'],
          slots.map((s) => [s.name, s.createdAt.slice(0, 16).replace('T', ' '), s.createdBy, String(s.failedAttempts)]),
        );
      },
    },
    rm: {
      usage: 'keyfile rm PATH',
      summary: 'Remove a key file\'s slot (then rekey)',
      args: [{ name: 'path', kind: 'path' }],
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const path = resolve(input.word('path'));
        const slot = (await ctx.store.listSlots()).find((s) => s.kind === 'keyfile' && s.name === path);
        if (!slot) throw new PasstoreError('not-found', `no key file slot for ${path} (keyfile list shows them)`);
        if (!(await ctx.prompt.confirm(`Remove the key file slot of ${path}? passtore-cron can no longer unlock with it`))) throw new PasstoreError('cancelled', 'nothing was removed');
        await ctx.change(async (tx) => {
          await tx.deleteSlot(slot.id);
          await ctx.audit({ action: 'keyfile-rm', target: `keyfile:${path}`, outcome: 'ok' }, tx);
        });
        ctx.out.line(`removed the key file slot of ${path}; run rekey so a copy of the old database cannot be opened with the file either`);
      },
    },
  },
});
