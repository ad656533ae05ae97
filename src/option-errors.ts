/**
 * Option errors in passtore's own words. node:util's parseArgs throws messages written
 * for programmers ("Unknown option '--confg'. To specify a positional argument starting
 * with a '-', place it at the end…"); the shell, `passtore` and `passtore-cron` turn them
 * into one short line, with the closest known option when there is one. The callers add
 * the usage line.
 */
import { didYouMean } from './suggest.js';

/** A parseArgs failure as one line: `unknown option --confg (did you mean --config?)`. */
export function describeOptionError(err: unknown, known: Record<string, { type: 'string' | 'boolean'; short?: string }>): string {
  const e = err as { code?: string; message?: string };
  const message = String(e?.message ?? err).split('\n')[0]!;
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const names = Object.keys(known).map((k) => `--${k}`);
  switch (e?.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const flag = quoted.split('=')[0]!;
      return `unknown option ${flag}${flag.startsWith('--') ? didYouMean(flag, names) : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = /^(-[-\w]*)/.exec(quoted)?.[1] ?? /(--?[\w-]+)/.exec(message)?.[1] ?? quoted;
      const long = flag.startsWith('--') ? flag : `--${Object.entries(known).find(([, o]) => `-${o.short}` === flag)?.[0] ?? flag.replace(/^-+/, '')}`;
      const spec = known[long.slice(2)];
      return spec?.type === 'boolean' ? `option ${long} takes no value` : `option ${long} needs a value`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument '${quoted}'`;
    default:
      return message.replace(/\. To specify a positional.*$/, '');
  }
}
