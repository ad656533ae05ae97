/**
 * What a command is: a declarative descriptor the registry, the shell's completer,
 * `help` and the man-page test read. Policy that applies to many commands (needs an
 * unlocked vault, reveals a secret, asks for one, takes a pattern) is a field here,
 * enforced once by the session, never an `if` inside a command.
 */
import type { Config } from './config.js';
import type { EntrySpec, HostPattern, SpecPattern } from './names.js';
import type { Secret } from './secret.js';
import type { Store } from './storage/store.js';
import type { AuditEvent } from './vault/audit.js';
import type { Vault } from './vault/vault.js';
import type { Remote } from './remote/remote.js';
import type { NetworkGuard } from './guard/guard.js';

/**
 * How an argument is parsed (before the command runs, so bad input is refused before any
 * prompt) and completed: `host` one host, `pattern` a host or pattern, `spec` one exact
 * entry, `spec-pattern` an entry whose host may be a pattern, `operator` an operator
 * name, `command` a command name, `word` and `path` free text.
 */
export type ArgKind = 'host' | 'pattern' | 'spec' | 'spec-pattern' | 'operator' | 'command' | 'word' | 'path';

export interface ArgSpec {
  name: string;
  kind: ArgKind;
  optional?: boolean;
}

export interface FlagSpec {
  type: 'boolean' | 'string';
  description: string;
  /** Checks a string flag's value; returns an error text or undefined. */
  check?: (value: string) => string | undefined;
}

/** Parsed arguments, typed by how they were declared. */
export interface Input {
  has(name: string): boolean;
  host(name: string): string;
  pattern(name: string): HostPattern;
  spec(name: string): EntrySpec;
  specPattern(name: string): SpecPattern;
  word(name: string): string;
  flag(name: string): boolean;
  option(name: string): string | undefined;
  /** A variadic command's last argument, every time it was given. */
  rest(): string[];
  /**
   * Aborted when the operator presses Ctrl-C while this command runs (the shell gives one
   * per command line; never aborted elsewhere). A command that reads or works long checks
   * it where stopping leaves nothing half done (src/cancel.ts) and ends with
   * PasstoreError('cancelled') saying what was kept.
   */
  readonly signal: AbortSignal;
}

/** What a colour says: bad (red), warn (yellow), good (green). */
export type Tone = 'bad' | 'warn' | 'good';

/**
 * How a table gives way on a narrow terminal: `shrink` lists the columns that may be
 * shortened with an ellipsis (default: all but the first), `drop` the columns left out,
 * first listed first, when shortening is not enough. Past that, one block per row.
 */
export interface TableOptions {
  shrink?: number[];
  drop?: number[];
  /** The last column, when it is prose: wrapped between words onto more lines instead of shortened. */
  wrapLast?: boolean;
}

/** Writes for the operator; the shell renders it on the terminal, tests capture it. */
export interface Output {
  line(text?: string): void;
  /** Prose such as help text, wrapped between words where the output has a width (else a line). */
  text?(paragraph: string): void;
  /** A table with a header row, fitted to the terminal's width as `options` allow. */
  table(head: string[], rows: string[][], options?: TableOptions): void;
  /** Colours a cell or word by its meaning (plain where colour is off, as with NO_COLOR). */
  paint(text: string, tone: Tone): string;
  /** A progress line (over-written in place on a terminal). */
  progress(text: string): void;
  /** The width output is fitted to, on a terminal (charts use 80 when absent). */
  readonly columns?: number;
  /**
   * Shows one secret on the terminal and erases it after the reveal timeout or at the
   * next key. Only a session on a terminal has this.
   */
  reveal?(label: string, secret: Secret): Promise<void>;
}

/** Asks the operator. Secrets are read with no echo and never reach any history. */
export interface Prompter {
  secret(label: string): Promise<Secret>;
  confirm(question: string): Promise<boolean>;
}

/**
 * What a command, a passtore-cron job and the remote operations are handed: the session's
 * parts, never a driver or the console. The session builds it once; `remote/`,
 * `x509/renewal.ts` and `cron/` take the parts they use as `Pick<Context, …>`.
 */
export interface Context {
  config: Config;
  store: Store;
  /** The vault; unlocked when the command `needs` 'unlocked'. */
  vault: Vault;
  operator: string;
  out: Output;
  prompt: Prompter;
  /** True while running from `source`. */
  scripted: boolean;
  /** Asks for a new secret twice; a too-short one (`minLength`, default 1) or a mismatch is asked again, up to three times. */
  newSecret(label: string, minLength?: number): Promise<Secret>;
  /**
   * Appends an audit record (inside `tx` when given, so it commits with the change); an
   * array appends them in order with a few statements (a pattern change's records).
   */
  audit(event: AuditEvent | AuditEvent[], tx?: Store): Promise<void>;
  /**
   * Runs `fn` in one transaction. With the vault unlocked it is `vault.transaction`: the
   * data key is brought up to date inside it before anything is sealed.
   */
  change<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /** SSH to hosts and workstations behind the network guard. */
  remote: Remote;
  /** The network guard (mail and CA traffic, transfers). */
  guard: NetworkGuard;
  /** How many hosts a pattern command works on at once. */
  concurrency: number;
  /** The session's own actions for `lock`, `exit`, `source`, `help`. */
  session: SessionActions;
}

export interface SessionActions {
  /** The commands this session knows (for `help`). */
  commands(): readonly CommandDescriptor[];
  find(name: string): CommandDescriptor | undefined;
  lock(): void;
  exit(): void;
  /** Runs one command line in this session as if typed (for `source`, which passes its own `signal`); returns its status. */
  runScriptLine(line: string, signal?: AbortSignal): Promise<number>;
  /** Resolves interrupted password changes; a line per entry. */
  reconcile(signal?: AbortSignal): Promise<Array<{ text: string; resolved: boolean }>>;
  /** Drops cached names (hosts, users) the completer keeps, after a change. */
  invalidateNames(): void;
}

export type Need = 'unlocked';

/** One runnable action: a command, or one subcommand of `host`, `operator`. */
export interface Action {
  usage: string;
  summary: string;
  args: ArgSpec[];
  flags?: Record<string, FlagSpec>;
  needs?: Need[];
  /** Shows a secret: one exact entry, a terminal only, never from a script. */
  reveals?: boolean;
  /** Asks for a secret at a no-echo prompt: never from a script. */
  asksSecret?: boolean | ((input: Input) => boolean);
  /**
   * Shows and uses no secret (names, states, certificates, the trail): the check of the
   * summary of what is current (vault/summary.ts), which reads every entry, is left to
   * the commands that show or use one.
   */
  usesNoSecret?: boolean | ((input: Input) => boolean);
  /**
   * Decides which SSH host key is believed or who can unlock the vault (`host trust`,
   * `keyfile create`): typed by the operator at the terminal only, never from a script.
   */
  terminalOnly?: boolean;
  /** Failures are recorded in the audit trail. */
  audited?: boolean;
  /** The last argument may be given more than once (`input.rest()`). */
  variadic?: boolean;
  run(ctx: Context, input: Input): Promise<void>;
}

export interface CommandDescriptor extends Partial<Action> {
  name: string;
  aliases?: string[];
  summary: string;
  /** Longer text for `help CMD` and the man page. */
  description?: string;
  subcommands?: Record<string, Action>;
}

/** Declares a command (an identity function that checks the descriptor's shape). */
export function defineCommand(descriptor: CommandDescriptor): CommandDescriptor {
  if (!descriptor.subcommands && !descriptor.run) throw new Error(`command ${descriptor.name} has neither run nor subcommands`);
  return descriptor;
}
