import { count } from '../src/plural.js';
import { splitWords } from '../src/args.js';
import { defineCommand, type CommandDescriptor } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { readRegularFile } from '../src/safe-file.js';

const MAX_SCRIPT = 4 * 1024 * 1024;

/** Whether a script line is a command: it splits into words and the first names a command (and subcommand). */
function isCommandLine(line: string, find: (name: string) => CommandDescriptor | undefined): boolean {
  let words: string[];
  try {
    words = splitWords(line);
  } catch {
    return false;
  }
  const command = words[0] === undefined ? undefined : find(words[0]);
  if (!command) return false;
  return !command.subcommands || (words[1] !== undefined && Object.hasOwn(command.subcommands, words[1]));
}

export default defineCommand({
  name: 'source',
  summary: 'Run a file of commands in this session',
  description:
    'Runs the commands of FILE (one a line, # starts a comment) as if typed, echoing each with its result, and stops at the first failure unless --keep-going. Only lines that parse as commands are echoed; any other line is reported by its number, not shown (and counts as a failure). FILE must be a regular UTF-8 text file of at most 4 MiB with no NUL byte. Commands that reveal a secret or ask for one (get, add, update, passwd, operator add) refuse to run from a script, so a script can never dump the vault. Ctrl-C cancels the line running (as if typed) and runs none after it.',
  usage: 'source FILE [--keep-going]',
  args: [{ name: 'file', kind: 'path' }],
  flags: { 'keep-going': { type: 'boolean', description: 'go on after a failed line' } },
  needs: ['unlocked'],
  async run(ctx, input) {
    if (ctx.scripted) throw new PasstoreError('policy', 'source cannot run from a script');
    const file = input.word('file');
    const bytes = readRegularFile(file, MAX_SCRIPT);
    // A script is text: a NUL or bytes that are not UTF-8 mean this is some other file
    // (a key, a database), which is refused without showing any of it.
    if (bytes.includes(0)) throw new PasstoreError('usage', `${file} holds a NUL byte: not a script; nothing was run`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new PasstoreError('usage', `${file} is not UTF-8 text: not a script; nothing was run`);
    }
    const lines = text.split(/\r?\n/);
    let failures = 0;
    let ran = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line || line.startsWith('#')) continue;
      ran++;
      // Only a line that parses as a command is echoed: a line of some other file (a
      // password, a key) is reported by its number, never shown.
      if (!isCommandLine(line, ctx.session.find)) {
        failures++;
        ctx.out.line(`${file}:${i + 1}: not a passtore command (line not shown)`);
        if (!input.flag('keep-going')) throw new PasstoreError('script', `${file}:${i + 1}: stopped at the first failure (${count(ran, 'command')} run)`);
        continue;
      }
      ctx.out.line(`passtore> ${line}`);
      const status = await ctx.session.runScriptLine(line, input.signal);
      // Ctrl-C: the line running was cancelled (it said what it kept); the rest is not run.
      if (input.signal.aborted) throw new PasstoreError('cancelled', `cancelled at ${file}:${i + 1}; the ${count(ran - 1, 'command')} before it ran, the rest did not`);
      if (status !== 0) {
        failures++;
        if (!input.flag('keep-going')) throw new PasstoreError('script', `${file}:${i + 1}: stopped at the first failure (${count(ran, 'command')} run)`);
      }
    }
    if (failures > 0) throw new PasstoreError('script', `${file}: ${failures} of ${count(ran, 'command')} failed`);
    ctx.out.line(`${file}: ${count(ran, 'command')} run`);
  },
});
