import { defineCommand, type Action, type CommandDescriptor } from '../src/command.js';
import { usageError } from '../src/errors.js';
import { didYouMean } from '../src/suggest.js';
import { printable } from '../src/names.js';

function usages(c: CommandDescriptor): string[] {
  return c.subcommands ? Object.values(c.subcommands).map((s: Action) => s.usage) : [c.usage!];
}

export default defineCommand({
  name: 'help',
  aliases: ['h'],
  summary: 'List the commands, or show one command\'s usage',
  usage: 'help [COMMAND]',
  args: [{ name: 'command', kind: 'command', optional: true }],
  async run(ctx, input) {
    const say = (t: string) => (ctx.out.text ? ctx.out.text(t) : ctx.out.line(t));
    if (!input.has('command')) {
      ctx.out.table(
        ['COMMAND', 'ALIAS', 'WHAT IT DOES'],
        ctx.session.commands().map((c) => [c.name, (c.aliases ?? []).join(' '), c.summary]),
        { wrapLast: true },
      );
      say('help COMMAND shows its usage. Secrets are always asked at a no-echo prompt, never typed on the command line.');
      return;
    }
    const name = input.word('command');
    const c = ctx.session.find(name);
    if (!c) throw usageError(`no command '${printable(name)}'${didYouMean(name, ctx.session.commands().flatMap((k) => [k.name, ...(k.aliases ?? [])]))}`);
    say(`${c.name}${c.aliases?.length ? ` (alias ${c.aliases.join(', ')})` : ''}: ${c.summary}`);
    for (const u of usages(c)) say(`  usage: ${u}`);
    if (c.description) say(c.description);
    const actions = c.subcommands ? Object.values(c.subcommands) : [c as Action];
    // A flag several subcommands share (host add/address --port) is listed once.
    const flags = new Map<string, { type: string; descriptions: string[] }>();
    for (const a of actions) {
      for (const [flag, spec] of Object.entries(a.flags ?? {})) {
        const f = flags.get(flag) ?? { type: spec.type, descriptions: [] };
        if (!f.descriptions.includes(spec.description)) f.descriptions.push(spec.description);
        flags.set(flag, f);
      }
    }
    for (const [flag, f] of flags) say(`  --${flag}${f.type === 'string' ? ' VALUE' : ''}  ${f.descriptions.join('; ')}`);
  },
});
