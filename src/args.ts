/**
 * Command lines: split into words (single and double quotes group, nothing is expanded),
 * then flags parsed by node:util's parseArgs and positionals checked against the
 * descriptor. Words are never handed to a shell.
 */
import { parseArgs } from 'node:util';
import type { Action, ArgSpec } from './command.js';
import { PasstoreError, usageError } from './errors.js';
import { printable } from './names.js';
import { describeOptionError } from './option-errors.js';
import { didYouMean } from './suggest.js';

/** Splits a line into words; quotes group, a backslash escapes the next character. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) current += line[++i];
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      current += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote) throw usageError(`unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) words.push(current);
  return words;
}

/** Parses the words after the command name against an action's declaration. */
export function parseWords(action: Action, name: string, words: string[]): { positionals: Map<string, string>; flags: Map<string, string | boolean>; rest: string[] } {
  const options: Record<string, { type: 'boolean' | 'string' }> = {};
  for (const [flag, spec] of Object.entries(action.flags ?? {})) options[flag] = { type: spec.type };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: words, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(`${name}: ${describeOptionError(e, options)}; usage: ${action.usage}`);
  }
  const flags = new Map<string, string | boolean>();
  for (const [k, v] of Object.entries(parsed.values)) {
    if (typeof v === 'string') {
      const problem = action.flags?.[k]?.check?.(v);
      if (problem) throw usageError(`${name}: --${k} ${printable(v)}: ${problem}`);
    }
    if (typeof v === 'string' || typeof v === 'boolean') flags.set(k, v);
  }
  const positionals = new Map<string, string>();
  const required = action.args.filter((a: ArgSpec) => !a.optional).length;
  if (parsed.positionals.length < required) throw usageError(`${name}: missing ${action.args[parsed.positionals.length]!.name.toUpperCase()}; usage: ${action.usage}`);
  if (parsed.positionals.length > action.args.length && !action.variadic) {
    throw usageError(`${name}: unexpected argument '${printable(parsed.positionals[action.args.length]!)}'; usage: ${action.usage}`);
  }
  parsed.positionals.slice(0, action.args.length).forEach((v, i) => positionals.set(action.args[i]!.name, v));
  return { positionals, flags, rest: parsed.positionals.slice(Math.max(0, action.args.length - 1)) };
}

/** An error for a word that is not a command, naming the closest of `known` if one is close. */
export function unknownCommand(word: string, known: Iterable<string> = []): PasstoreError {
  return usageError(`unknown command '${printable(word)}'${didYouMean(word, known)}; type help for the list`);
}
