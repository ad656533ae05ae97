/**
 * The session: one object holding the configuration, the store, the vault (locked or
 * unlocked), the operator and the policy. The shell drives it from a terminal; the tests
 * and `passtore-cron` drive it directly. It parses each command line, enforces the
 * descriptor's policy (unlocked, reveals, asks for a secret, scripted), runs the command,
 * and turns every error into one line and an exit status.
 */
import { cancelledBy, NEVER } from './cancel.js';
import { checkCopy, readHeadCopy, rolledBack, stateOf, writeHeadCopy } from './vault/rollback.js';
import { HeldStamps, SummaryCheck } from './vault/summary.js';
import { logFailedUnlock } from './syslog.js';
import { splitWords, parseWords, unknownCommand } from './args.js';
import { didYouMean } from './suggest.js';
import type { Action, CommandDescriptor, Context, Input, Output, Prompter } from './command.js';
import { dataDir, type Config } from './config.js';
import { NetworkGuard } from './guard/guard.js';
import { Remote } from './remote/remote.js';
import { ExitStatus, exitStatusOf, errorMessage, formatError, PasstoreError, usageError } from './errors.js';
import { parseHost, parseHostPattern, parseOperatorName, parseSpec, parseSpecPattern, printable } from './names.js';
import { registry as defaultRegistry, type Registry } from './registry.js';
import { Secret } from './secret.js';
import { DEFAULT_CONCURRENCY, PASSPHRASE_MIN, passphraseTooShort } from './policy.js';
import { openStore } from './storage/open.js';
import type { Store } from './storage/store.js';
import { appendAudit, appendAudits, sealUnsealed, type AuditEvent } from './vault/audit.js';
import { Vault, type UnlockOptions } from './vault/vault.js';

/** One interrupted password change, and whether reconcile settled it. */
export interface ReconcileLine {
  text: string;
  resolved: boolean;
}

export interface SessionOptions {
  config: Config;
  prompt: Prompter;
  out: Output;
  /** True when input and output are a terminal (the shell); reveals need it. */
  terminal: boolean;
  /** The operator whose key slot unlocks; defaults to the config's. */
  operator?: string;
  registry?: Registry;
  unlock?: UnlockOptions;
  /** An already opened store (tests); otherwise the config's is opened. */
  store?: Store;
  /** Where the network guard keeps its marker (default: passtore's data directory). */
  stateDir?: string;
  /** False: a missing SQLite vault file is an error, not created (passtore-cron). */
  createStore?: boolean;
}

/** Codes of failures the audit trail records even for commands not marked `audited`. */
const ALWAYS_AUDITED = new Set(['policy', 'integrity', 'mismatch']);

export class Session {
  readonly config: Config;
  readonly store: Store;
  readonly operator: string;
  readonly registry: Registry;
  readonly out: Output;
  readonly prompt: Prompter;
  readonly terminal: boolean;
  readonly guard: NetworkGuard;
  readonly remote: Remote;
  /** The one context the shell's commands, passtore-cron's jobs and remote/ are handed. */
  readonly context: Context;
  #vault: Vault | undefined;
  #unlockOptions: UnlockOptions;
  #scripted = 0;
  #exitRequested = false;
  #recoveredGuard = 0;
  /** Where the copy of the vault's state is kept (vault/rollback.ts). */
  #stateDir: string;
  /** The vault record's head and keys at the last save of that copy. */
  #savedMark: string | undefined;
  #nameListeners: Array<() => void> = [];
  /** The summary check of this unlock (vault/summary.ts): made at unlock, wiped at lock. */
  #summaryCheck: SummaryCheck | undefined;

  private constructor(options: SessionOptions, store: Store, vault: Vault | undefined) {
    this.config = options.config;
    this.store = store;
    this.operator = parseOperatorName(options.operator ?? options.config.operator);
    this.registry = options.registry ?? defaultRegistry;
    this.out = options.out;
    this.prompt = options.prompt;
    this.terminal = options.terminal;
    this.#vault = vault;
    this.#unlockOptions = options.unlock ?? {};
    this.guard = new NetworkGuard(options.config.network, options.stateDir ?? dataDir());
    this.#stateDir = options.stateDir ?? dataDir();
    this.context = this.#buildContext();
    this.remote = this.context.remote;
  }

  /** Opens the store (migrating it) and loads the vault, still locked. */
  static async open(options: SessionOptions): Promise<Session> {
    const store = options.store ?? (await openStore(options.config.db, options.config.dbPasswordFile, { create: options.createStore ?? true }));
    try {
      return new Session(options, store, await Vault.load(store));
    } catch (e) {
      if (!options.store) await store.close();
      throw e;
    }
  }

  get hasVault(): boolean {
    return this.#vault !== undefined;
  }

  get unlocked(): boolean {
    return this.#vault?.unlocked ?? false;
  }

  get exitRequested(): boolean {
    return this.#exitRequested;
  }

  /** The vault (for tests and cron); throws when none exists. */
  get vault(): Vault {
    if (!this.#vault) throw new PasstoreError('not-found', `no vault in ${this.store.location}; create one with passtore init`);
    return this.#vault;
  }

  /** Called after changes to hosts or entries (the completer's cache listens). */
  onNamesChanged(listener: () => void): void {
    this.#nameListeners.push(listener);
  }

  /** Creates the vault, asking the new passphrase twice. */
  async createVault(): Promise<void> {
    if (this.#vault) throw new PasstoreError('exists', `a vault already exists in ${this.store.location}`);
    const passphrase = await this.#askNew(`New vault passphrase for ${this.operator}`, PASSPHRASE_MIN);
    try {
      this.#vault = await Vault.create(this.store, this.operator, passphrase);
    } finally {
      passphrase.wipe();
    }
    // Its seal makes the summary of what is current (vault/summary.ts); the detail says so.
    await this.audit({ action: 'vault-create', target: this.store.location, outcome: 'ok', detail: 'with a summary of what is current' });
  }

  /** Wrong passphrases for this operator between the previous unlock and the last one. */
  failedUnlocksBefore = 0;

  /** Unlocks with the operator's passphrase, asked with no echo; up to `attempts` tries. */
  async unlock(attempts = 3, given?: Secret): Promise<void> {
    const vault = this.vault;
    for (let i = 1; ; i++) {
      // A passphrase already given (restore) is used once and left to its owner to wipe.
      const passphrase = i === 1 && given ? Secret.fromBytes(Buffer.from(given.bytes())) : await this.prompt.secret(`Passphrase for ${this.operator}`);
      // The delay after a wrong passphrase is shown while it lasts, counting down.
      let ticker: NodeJS.Timeout | undefined;
      const onDelay = (ms: number) => {
        const until = Date.now() + ms;
        const show = () => this.out.progress(`wrong passphrase; waiting ${Math.max(1, Math.ceil((until - Date.now()) / 1000))} s`);
        show();
        ticker = setInterval(show, 1000);
      };
      const unlocking = vault.unlockWithPassphrase(this.operator, passphrase, { ...this.#unlockOptions, onDelay });
      // MariaDB: every entry's stamp comes over the network while the key is derived, for
      // the check right after (summary.ts, HeldStamps); SQLite reads them faster than that.
      // Started once the unlock has taken the pool's open connection for the key slot, so
      // the one this opens is opened while the key is derived, not before.
      const held = this.store.dialect === 'mysql' ? new HeldStamps(this.store) : undefined;
      try {
        const failedBefore = await unlocking;
        await this.#afterUnlock(`operator:${this.operator}`, held);
        this.failedUnlocksBefore = failedBefore;
        return;
      } catch (e) {
        if (!(e instanceof PasstoreError) || e.code !== 'bad-passphrase') throw e;
        logFailedUnlock(this.vault.id, `operator:${this.operator}`);
        await this.audit({ action: 'unlock', target: `operator:${this.operator}`, outcome: 'failed', detail: e.message }).catch(() => undefined);
        if (i >= attempts) throw e;
        this.out.line(formatError(e));
      } finally {
        held?.abort();
        clearInterval(ticker);
        passphrase.wipe();
      }
    }
  }

  /** Unlocks with a key file (passtore-cron). */
  async unlockWithKeyfile(path: string): Promise<void> {
    try {
      await this.vault.unlockWithKeyfile(path);
    } catch (e) {
      if (e instanceof PasstoreError && e.code === 'bad-passphrase') logFailedUnlock(this.vault.id, `keyfile:${path}`);
      await this.audit({ action: 'unlock', target: `keyfile:${path}`, outcome: 'failed', detail: e instanceof PasstoreError ? e.message : 'error' }).catch(() => undefined);
      throw e;
    }
    await this.#afterUnlock(`keyfile:${path}`);
  }

  /**
   * Right after the keys opened: the rollback checks (nothing is shown when one fails),
   * then the failed unlocks recorded since the last sealed record are sealed into the
   * chain, a vault without a summary of what is current gets one, and the unlock is
   * recorded.
   */
  async #afterUnlock(target: string, held?: HeldStamps): Promise<void> {
    const summary = await this.#checkRollback(held);
    const key = this.vault.auditKey()!;
    const sealed = await sealUnsealed(this.store, key);
    if (!summary) {
      // The first unlock since schema 12: this record's seal makes the summary (summary.ts).
      // A vault that had one (its trail says so) lost it to SQL: refused, not made anew.
      const had = await this.#summaryWasMade();
      if (had) {
        this.lock();
        throw new PasstoreError('integrity', `integrity error: the summary of what is current was removed from the vault record (it was made at audit record ${had}); nothing is shown`);
      }
      await this.audit({ action: 'summary-create', target: 'vault', outcome: 'ok', detail: 'the summary of what is current was made from the entries as found (first unlock since schema 12)' });
    }
    await this.audit({ action: 'unlock', target, outcome: 'ok', ...(sealed > 0 ? { detail: `${sealed} failed unlock${sealed === 1 ? '' : 's'} before this one sealed into the trail` } : {}) });
    await this.#saveState();
  }

  /** The sealed audit record after which the vault had a summary of what is current, or undefined (a vault from before schema 12). */
  async #summaryWasMade(): Promise<number | undefined> {
    const [first] = await this.store.auditAfter(0, 1);
    if (first && first.mac !== null && first.action === 'vault-create' && first.detail.includes('summary')) return first.seq;
    return (await this.store.listAudit({ targetLike: 'vault' })).find((r) => r.action === 'summary-create' && r.mac !== null)?.seq;
  }

  /**
   * Before any secret is shown or used: the summary of what is current in the database
   * must match the vault record and every entry (vault/summary.ts), on any machine.
   */
  async verifyCurrent(): Promise<void> {
    if (!this.unlocked) return;
    this.#summaryCheck ??= new SummaryCheck(this.vault.auditKey()!, this.vault.id);
    await this.#summaryCheck.check(this.store);
  }

  /** How many summary checks of this unlock read every entry, and how many did not need to (tests, benchmarks). */
  get summaryCheckCounts(): { full: number; skipped: number } {
    return { ...(this.#summaryCheck?.counts ?? { full: 0, skipped: 0 }) };
  }

  /** Closes a network guard a crashed run left open; returns how many targets it closed. */
  async recoverGuard(): Promise<number> {
    const closed = await this.guard.recover();
    // Recorded at the next unlock: only then can the record be sealed.
    this.#recoveredGuard += closed;
    return closed;
  }

  /**
   * Resolves password changes a crash or failure interrupted, by trying both passwords on
   * each host (unlocked vault needed). Returns a line per entry. `signal` (Ctrl-C) gives
   * up the logins being made and leaves the entries not settled yet pending, as they were.
   */
  async reconcile(signal?: AbortSignal): Promise<ReconcileLine[]> {
    const { reconcileEntry } = await import('./remote/password.js');
    const lines: ReconcileLine[] = [];
    for (const entry of await this.store.pendingEntries()) {
      const host = await this.store.getHost(entry.fqdn);
      if (!host) continue;
      const name = `${entry.user}@${entry.fqdn}:${entry.service}`;
      if (signal?.aborted) {
        lines.push({ text: `${name}: not tried (cancelled; still pending)`, resolved: false });
        continue;
      }
      try {
        const r = await reconcileEntry(this.context, host, entry, signal);
        if (r === 'pending-kept') lines.push({ text: `${name}: the host has the new password; it is now current`, resolved: true });
        else if (r === 'old-kept') lines.push({ text: `${name}: the host kept the old password; the new one was dropped`, resolved: true });
        else lines.push({ text: `${name}: neither password logs in; both kept, check the host`, resolved: false });
      } catch (e) {
        lines.push({ text: `${name}: ${errorMessage(e)} (still pending)`, resolved: false });
      }
    }
    return lines;
  }

  /** Wipes the data key from memory. */
  lock(): void {
    this.#vault?.lock();
    this.#summaryCheck?.wipe();
    this.#summaryCheck = undefined;
  }

  /**
   * Right after an unlock: the database's state against the copy kept on this machine
   * (vault/rollback.ts). A rolled-back vault is locked again and refused, nothing shown.
   */
  async #checkRollback(held?: HeldStamps): Promise<unknown> {
    try {
      const key = this.vault.auditKey()!;
      const readRow = async () => {
        const row = await this.store.getVault();
        if (!row) throw new PasstoreError('integrity', 'the vault record is gone');
        return row;
      };
      const recordHash = async (seq: number) => (await this.store.auditAfter(seq - 1, 1)).find((r) => r.seq === seq)?.hash;
      const current = await checkCopy(this.#stateDir, this.vault.id, readRow, key, recordHash);
      // Then the database against itself (any machine): the summary of what is current,
      // read whole (this unlock's check starts with nothing known).
      this.#summaryCheck?.wipe();
      this.#summaryCheck = new SummaryCheck(key, this.vault.id);
      const summary = await this.#summaryCheck.check(this.store, held);
      writeHeadCopy(this.#stateDir, current);
      return summary;
    } catch (e) {
      this.lock();
      throw e;
    }
  }

  /** Moves the copy of the vault's state on this machine forward (never back; never fails a command). */
  async #saveState(): Promise<void> {
    if (!this.unlocked) return;
    try {
      const key = this.vault.auditKey()!;
      const row = (await this.store.getVault())!;
      // Nothing sealed since the last save (a command that changed nothing): nothing to do.
      const mark = `${row.auditHead} ${row.dataKeyGeneration} ${row.keyring} ${row.summary}`;
      if (mark === this.#savedMark) return;
      const current = stateOf(row, key);
      const seen = readHeadCopy(this.#stateDir, current.vaultId, key);
      if (!seen || !rolledBack(current, seen)) {
        writeHeadCopy(this.#stateDir, current);
        this.#savedMark = mark;
      }
    } catch {
      // Reported by the check at the next unlock.
    }
  }

  async close(): Promise<void> {
    await this.#saveState();
    this.lock();
    await this.store.close();
  }

  /** Appends an audit record as this session's operator (several, in order, for an array). */
  async audit(event: AuditEvent | AuditEvent[], tx?: Store): Promise<void> {
    if (this.unlocked && !tx) this.#recoveredGuard += this.guard.takeSwept(); // closed before an `up`, while running
    if (this.#recoveredGuard > 0 && this.unlocked && !tx) {
      const n = this.#recoveredGuard;
      this.#recoveredGuard = 0;
      await appendAudit(this.store, this.#who(), { action: 'guard-recover', target: 'network', outcome: 'ok', detail: `${n} left open by an earlier run, closed` }, this.#vault?.auditKey());
    }
    if (Array.isArray(event)) await appendAudits(tx ?? this.store, this.#who(), event, this.#vault?.auditKey());
    else await appendAudit(tx ?? this.store, this.#who(), event, this.#vault?.auditKey());
  }

  /** Who stores what passtore-cron stores: the key file it unlocked with. */
  get cronActor(): string {
    return this.#who();
  }

  #who(): string {
    return this.#vault?.unlockedWith?.kind === 'keyfile' ? `keyfile:${this.#vault.unlockedWith.name}` : this.operator;
  }

  /**
   * Asks a new secret twice. A too-short entry or two that differ are said on one line
   * and asked again, up to three rounds; then refused, nothing changed. A cancel (Ctrl-C,
   * Ctrl-D) at either prompt ends it at once. Every entry but the returned one is wiped.
   */
  async #askNew(label: string, minLength = 1): Promise<Secret> {
    const ROUNDS = 3;
    for (let round = 1; ; round++) {
      const first = await this.prompt.secret(label);
      let why: string | undefined;
      if (first.length < minLength) {
        why = minLength === PASSPHRASE_MIN ? passphraseTooShort() : minLength > 1 ? `a passphrase needs at least ${minLength} characters` : 'an empty secret is not stored';
      } else {
        let second: Secret | undefined;
        try {
          second = await this.prompt.secret(`${label} (again)`);
          if (!first.equals(second)) why = 'the two entries differ';
        } catch (e) {
          first.wipe();
          throw e;
        } finally {
          second?.wipe();
        }
      }
      if (why === undefined) return first;
      first.wipe();
      if (round >= ROUNDS) throw usageError(`${why}; nothing was changed (${ROUNDS} tries)`);
      const left = ROUNDS - round;
      this.out.line(`${why}; try again (${left} ${left === 1 ? 'try' : 'tries'} left)`);
    }
  }

  /**
   * Runs one command line; returns its exit status. Errors are printed as one line and
   * never escape. `scripted` lines (from `source`) may not reveal or ask for secrets.
   * `signal` (the shell's Ctrl-C) cancels the command where it checks it: its cancel is
   * one line, the command's name and what was kept (`importcert: cancelled; nothing
   * stored`), not an error; the session stays open and unlocked.
   */
  async execute(line: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    let words: string[];
    try {
      words = splitWords(line);
    } catch (e) {
      this.out.line(formatError(e));
      return exitStatusOf(e);
    }
    if (words.length === 0 || words[0]!.startsWith('#')) return ExitStatus.ok;
    const [name, ...rest] = words as [string, ...string[]];
    let action: Action | undefined;
    let label = name;
    try {
      const command = this.registry.find(name);
      if (!command) throw unknownCommand(name, this.registry.names());
      ({ action, label } = this.#resolveAction(command, rest));
      const actionWords = command.subcommands ? rest.slice(1) : rest;
      await this.#run(label, action, actionWords, options.signal ?? NEVER);
      await this.#saveState();
      return ExitStatus.ok;
    } catch (e) {
      this.out.line(cancelledBy(e, options.signal) ? `${label}: ${errorMessage(e)}` : formatError(e));
      const code = e instanceof PasstoreError ? e.code : 'internal';
      // Only an unlocked session can seal a record; a failed unlock is recorded by unlock().
      if (this.unlocked && action && (action.audited || ALWAYS_AUDITED.has(code))) {
        const args = this.registry.find(name)?.subcommands ? rest.slice(1) : rest;
        const target = args.find((w) => !w.startsWith('-')) ?? '';
        await this.audit({ action: label.replace(' ', '-'), target: printable(target), outcome: code === 'policy' ? 'refused' : 'failed', detail: code }).catch(() => undefined);
      }
      return exitStatusOf(e);
    }
  }

  #resolveAction(command: CommandDescriptor, rest: string[]): { action: Action; label: string } {
    if (!command.subcommands) return { action: command as Action, label: command.name };
    const sub = rest[0];
    const names = Object.keys(command.subcommands).join(', ');
    if (!sub) throw usageError(`${command.name}: missing subcommand (${names})`);
    const action = command.subcommands[sub];
    if (!action) throw usageError(`${command.name}: unknown subcommand '${printable(sub)}'${didYouMean(sub, Object.keys(command.subcommands))} (${names})`);
    return { action, label: `${command.name} ${sub}` };
  }

  async #run(label: string, action: Action, words: string[], signal: AbortSignal): Promise<void> {
    const { positionals, flags, rest } = parseWords(action, label, words);
    const input = this.#input(action, positionals, flags, rest, signal);
    const scripted = this.context.scripted;
    const asks = typeof action.asksSecret === 'function' ? action.asksSecret(input) : action.asksSecret;
    if (action.reveals) {
      if (scripted) throw new PasstoreError('policy', `${label} reveals a secret and cannot run from a script`);
      if (!this.terminal || !this.out.reveal) throw new PasstoreError('policy', `${label} shows secrets only on a terminal`);
    }
    if (asks && scripted) throw new PasstoreError('policy', `${label} asks for a secret and cannot run from a script`);
    if (action.terminalOnly && (scripted || !this.terminal)) throw new PasstoreError('policy', `${label} decides what passtore trusts and runs only when typed at the terminal, never from a script`);
    if (action.needs?.includes('unlocked') && !this.unlocked) {
      if (scripted || !this.terminal) throw new PasstoreError('locked', 'the vault is locked');
      await this.unlock();
    }
    if (this.unlocked) await this.vault.refresh();
    // Nothing is shown or used from a database whose entries or vault record were set back.
    const noSecret = typeof action.usesNoSecret === 'function' ? action.usesNoSecret(input) : action.usesNoSecret;
    if (action.needs?.includes('unlocked') && !noSecret) await this.verifyCurrent();
    await action.run(this.context, input);
  }

  #input(action: Action, positionals: Map<string, string>, flags: Map<string, string | boolean>, rest: string[], signal: AbortSignal): Input {
    const domain = this.config.domain;
    // Parse every argument now, so bad input is refused before any prompt.
    const parsed = new Map<string, unknown>();
    for (const arg of action.args) {
      const raw = positionals.get(arg.name);
      if (raw === undefined) continue;
      switch (arg.kind) {
        case 'host':
          parsed.set(arg.name, parseHost(raw, domain));
          break;
        case 'pattern':
          parsed.set(arg.name, parseHostPattern(raw, domain));
          break;
        case 'spec':
          parsed.set(arg.name, parseSpec(raw, domain));
          break;
        case 'spec-pattern':
          parsed.set(arg.name, parseSpecPattern(raw, domain));
          break;
        case 'operator':
          parsed.set(arg.name, parseOperatorName(raw));
          break;
        default:
          parsed.set(arg.name, raw);
      }
    }
    const get = <T>(name: string): T => {
      if (!parsed.has(name)) throw new Error(`argument ${name} was not given or not declared`);
      return parsed.get(name) as T;
    };
    return {
      has: (name) => parsed.has(name),
      host: (name) => get<string>(name),
      pattern: (name) => get(name),
      spec: (name) => get(name),
      specPattern: (name) => get(name),
      word: (name) => get<string>(name),
      flag: (name) => flags.get(name) === true,
      option: (name) => {
        const v = flags.get(name);
        return typeof v === 'string' ? v : undefined;
      },
      rest: () => [...rest],
      signal,
    };
  }

  #buildContext(): Context {
    const self = this;
    const context: Context = {
      config: this.config,
      store: this.store,
      get vault() {
        return self.vault;
      },
      operator: this.operator,
      out: this.out,
      // Time passes at a prompt: another session may rekey meanwhile, so the data key is
      // brought up to date after each answer, before the command opens anything with it.
      prompt: {
        secret: async (label) => {
          const answer = await this.prompt.secret(label);
          try {
            if (self.unlocked) await self.vault.refresh();
          } catch (e) {
            answer.wipe();
            throw e;
          }
          return answer;
        },
        confirm: async (question) => {
          const yes = await this.prompt.confirm(question);
          if (self.unlocked) await self.vault.refresh();
          return yes;
        },
      },
      get scripted() {
        return self.#scripted > 0;
      },
      newSecret: (label, minLength) => this.#askNew(label, minLength),
      audit: (event, tx) => this.audit(event, tx),
      // An unlocked vault's transaction brings the data key up to date inside it, and
      // refuses a seal outside it: a secret is never sealed under a replaced key.
      change: (fn) => (self.unlocked ? self.vault.transaction(fn) : this.store.transaction(fn)),
      remote: undefined as unknown as Remote,
      guard: this.guard,
      concurrency: DEFAULT_CONCURRENCY,
      session: {
        commands: () => this.registry.commands,
        find: (name) => this.registry.find(name),
        lock: () => this.lock(),
        exit: () => {
          this.#exitRequested = true;
        },
        runScriptLine: (line, signal) => this.#runScripted(line, signal),
        reconcile: () => this.reconcile(),
        invalidateNames: () => this.#nameListeners.forEach((l) => l()),
      },
    };
    context.remote = new Remote(context);
    return context;
  }

  async #runScripted(line: string, signal?: AbortSignal): Promise<number> {
    this.#scripted++;
    try {
      return await this.execute(line, { signal });
    } finally {
      this.#scripted--;
    }
  }
}
