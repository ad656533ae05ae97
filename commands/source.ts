import { count } from '../src/plural.js';
import { readFileSync, statSync } from 'node:fs';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';

const MAX_SCRIPT = 4 * 1024 * 1024;

export default defineCommand({
  name: 'source',
  summary: 'Run a file of commands in this session',
  description:
    'Runs the commands of FILE (one a line, # starts a comment) as if typed, echoing each with its result, and stops at the first failure unless --keep-going. Commands that reveal a secret or ask for one (get, add, update, passwd, operator add) refuse to run from a script, so a script can never dump the vault.',
  usage: 'source FILE [--keep-going]',
  args: [{ name: 'file', kind: 'path' }],
  flags: { 'keep-going': { type: 'boolean', description: 'go on after a failed line' } },
  needs: ['unlocked'],
  async run(ctx, input) {
    if (ctx.scripted) throw new PasstoreError('policy', 'source cannot run from a script');
    const file = input.word('file');
    let text: string;
    try {
      if (statSync(file).size > MAX_SCRIPT) throw new PasstoreError('io', `${file} is larger than 4 MiB`);
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if (e instanceof PasstoreError) throw e;
      throw new PasstoreError('io', `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
    }
    const lines = text.split(/\r?\n/);
    let failures = 0;
    let ran = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line || line.startsWith('#')) continue;
      ctx.out.line(`passtore> ${line}`);
      ran++;
      const status = await ctx.session.runScriptLine(line);
      if (status !== 0) {
        failures++;
        if (!input.flag('keep-going')) throw new PasstoreError('script', `${file}:${i + 1}: stopped at the first failure (${count(ran, 'command')} run)`);
      }
    }
    if (failures > 0) throw new PasstoreError('script', `${file}: ${failures} of ${count(ran, 'command')} failed`);
    ctx.out.line(`${file}: ${count(ran, 'command')} run`);
  },
});
