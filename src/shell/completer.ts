/**
 * Tab completion, read from the command descriptors: command names, then subcommands,
 * flags, and for host, spec and pattern arguments the stored hosts (short names inside
 * the configured domain), `user@` and `:service` parts already stored. A pattern is not
 * completed but shown: `ui-*<TAB>` lists what it matches.
 */
import type { ArgKind, CommandDescriptor } from '../command.js';
import { globToRegExp, parseHostPattern, shortName } from '../names.js';
import type { Session } from '../session.js';

const LIMIT = 200;

export type CompletionResult =
  | { kind: 'complete'; completions: string[]; token: string }
  | { kind: 'show'; matches: string[]; more: boolean };

export class Completer {
  #users: string[] | undefined;
  #services: string[] | undefined;

  constructor(private readonly session: Session) {
    session.onNamesChanged(() => {
      this.#users = undefined;
      this.#services = undefined;
    });
  }

  /** Completes the line up to the cursor. */
  async complete(line: string): Promise<CompletionResult> {
    const words = line.split(/\s+/);
    const token = words.pop() ?? '';
    const none: CompletionResult = { kind: 'complete', completions: [], token };
    if (words.length === 0 || (words.length === 1 && words[0] === '')) {
      return { kind: 'complete', completions: this.session.registry.names().filter((n) => n.startsWith(token)), token };
    }
    if (words[0] === '') words.shift();
    const command = this.session.registry.find(words[0]!);
    if (!command) return none;
    let action: Pick<CommandDescriptor, 'args' | 'flags'> = command;
    let used = words.length - 1;
    if (command.subcommands) {
      if (words.length === 1) return { kind: 'complete', completions: Object.keys(command.subcommands).filter((s) => s.startsWith(token)).map((s) => `${s} `), token };
      const sub = command.subcommands[words[1]!];
      if (!sub) return none;
      action = sub;
      used = words.length - 2;
    }
    if (token.startsWith('-')) {
      return { kind: 'complete', completions: Object.keys(action.flags ?? {}).map((f) => `--${f}`).filter((f) => f.startsWith(token)), token };
    }
    const positionals = words.slice(words.length - used).filter((w) => !w.startsWith('-')).length;
    const arg = action.args?.[positionals];
    if (!arg) return none;
    return this.#completeArg(arg.kind, token);
  }

  async #completeArg(kind: ArgKind, token: string): Promise<CompletionResult> {
    const none: CompletionResult = { kind: 'complete', completions: [], token };
    switch (kind) {
      case 'command':
        return { kind: 'complete', completions: this.session.registry.commands.map((c) => c.name).filter((n) => n.startsWith(token)), token };
      case 'operator': {
        const slots = await this.session.store.listSlots();
        return { kind: 'complete', completions: slots.filter((s) => s.kind === 'passphrase' && s.name.startsWith(token)).map((s) => s.name), token };
      }
      case 'host':
      case 'pattern':
      case 'spec':
      case 'spec-pattern':
        return this.#completeSpec(kind, token);
      default:
        return none;
    }
  }

  async #completeSpec(kind: ArgKind, token: string): Promise<CompletionResult> {
    const domain = this.session.config.domain;
    const takesParts = kind === 'spec' || kind === 'spec-pattern';
    const at = takesParts ? token.indexOf('@') : -1;
    const userPart = at >= 0 ? token.slice(0, at + 1) : '';
    let rest = token.slice(userPart.length);
    const colon = takesParts ? rest.indexOf(':') : -1;
    if (colon >= 0) {
      const before = token.slice(0, userPart.length + colon + 1);
      const typed = rest.slice(colon + 1);
      this.#services ??= await this.session.store.distinctServices();
      return { kind: 'complete', completions: this.#services.filter((s) => s.startsWith(typed)).map((s) => before + s), token };
    }
    if (/[*?]/.test(rest)) {
      if (kind === 'spec' || kind === 'host') return { kind: 'show', matches: [], more: false };
      let glob: string;
      try {
        glob = parseHostPattern(rest, domain).glob;
      } catch {
        return { kind: 'show', matches: [], more: false };
      }
      const hosts = await this.session.store.findHosts(glob, LIMIT + 1);
      const re = globToRegExp(glob);
      const names = hosts.filter((h) => glob === '*' || re.test(h.fqdn)).map((h) => shortName(h.fqdn, domain));
      return { kind: 'show', matches: names.slice(0, LIMIT), more: names.length > LIMIT };
    }
    rest = rest.toLowerCase();
    // After `user@`, only the hosts that hold an entry for that user.
    const fqdns = userPart
      ? [...new Set((await this.session.store.findEntries(`${rest.replace(/[*?]/g, '')}*`, userPart.slice(0, -1))).map((e) => e.fqdn))].filter((f) => f.startsWith(rest)).sort().slice(0, LIMIT)
      : await this.session.store.hostNamesWithPrefix(rest, LIMIT);
    const completions = fqdns.map((f) => userPart + shortName(f, domain));
    if (takesParts && at < 0) {
      this.#users ??= await this.session.store.distinctUsers();
      completions.unshift(...this.#users.filter((u) => u.startsWith(token) && u !== 'root').map((u) => `${u}@`));
    }
    return { kind: 'complete', completions, token };
  }
}
