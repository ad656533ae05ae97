/**
 * The network guard (SPEC section 7): the vault machine's network is down and its
 * firewall closed; each connection is wrapped in the `[network]` commands: `up`, then
 * `allow` for the one target address and port; after the transfer `revoke`, then `down`,
 * also when the transfer failed. Commands run as argument vectors ({address} and {port}
 * substituted inside words, after the address was checked to be an IP address), never as
 * a shell string. Every rule names exactly one address and port, however many targets
 * are open at once.
 *
 * Several processes (a shell, `passtore-cron` runs) share the one network, so each keeps
 * its own marker, `guard-open.PID.json` in the state directory, naming what it has open;
 * markers are read and written, and `up` and `down` run, only under an inter-process lock
 * (an exclusive transaction on the SQLite file `guard.lock`, which the kernel releases when
 * its holder dies). `down` runs when the last target of every live process is closed, so
 * one process never cuts another's transfer. A marker whose process is dead (its pid gone,
 * or reused by a process started later) is what a crash left open: `recover` revokes its
 * targets, removes it, and brings the network down unless a live process still has a
 * target open.
 *
 * By default the guard's own commands run one at a time (the lock serialises them across
 * processes too). With `parallel = yes` (for commands safe to run concurrently, such as
 * `iptables -w`), `allow` and `revoke` for different targets run at once. With `batch`
 * (for example `iptables-restore --noflush`, or `nft -f -`), the targets waiting to be
 * opened, or closed, are handed to one command as a script on its standard input: one
 * `batch_allow` or `batch_revoke` line per target, between `batch_begin` and `batch_end`.
 * A batch takes the lock and writes the marker once for all its targets (recorded before
 * their rules exist, forgotten only after the batch that revokes them has run). With
 * `parallel = yes` as well, `up` runs beside the batch that opens the first target and
 * `down` beside the batch that closes the last one, so neither adds a command's time.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Database from 'better-sqlite3';
import { splitWords } from '../args.js';
import { PasstoreError } from '../errors.js';

const exec = promisify(execFile);

export interface Target {
  address: string;
  port: number;
}

/** What one process has open, as its marker file records it. */
interface Marker {
  pid: number;
  /** The process's start time (Linux: /proc/PID/stat field 22), so a reused pid is not taken for it. */
  started?: string;
  up: boolean;
  targets: Target[];
}

/**
 * The guard's commands as configured (`[network]`); with none, the guard does nothing.
 * `parallel` is `yes` or `no`; the `batch_*` keys are used when `batch` is set.
 */
export interface GuardCommands {
  up?: string;
  down?: string;
  allow?: string;
  revoke?: string;
  parallel?: string;
  batch?: string;
  batch_allow?: string;
  batch_revoke?: string;
  batch_begin?: string;
  batch_end?: string;
}

const MARKER = /^guard-open(\.(\d+))?\.json$/;
const LOCK_WAIT_MS = 60_000;

/** A target this process has open: how many users, its opening, its closing once begun. */
interface OpenTarget {
  target: Target;
  count: number;
  ready: Promise<void>;
  closing?: Promise<void>;
}

interface Waiter {
  which: 'allow' | 'revoke';
  target: Target;
  forget?: () => void;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class NetworkGuard {
  #open = new Map<string, OpenTarget>();
  #up = false;
  #queue: Promise<unknown> = Promise.resolve();
  #lockDb: Database.Database | undefined;
  readonly #dir: string;
  readonly #marker: string;
  readonly #started = processStart(process.pid);
  #batch: { waiting: Waiter[]; running: boolean } = { waiting: [], running: false };

  constructor(
    private readonly commands: GuardCommands,
    stateDir: string,
  ) {
    if (commands.batch && !(commands.batch_allow && commands.batch_revoke)) throw new PasstoreError('usage', '[network] batch needs batch_allow and batch_revoke (the line given for each target)');
    this.#dir = stateDir;
    this.#marker = join(stateDir, `guard-open.${process.pid}.json`);
  }

  /** Whether any command is configured. */
  get configured(): boolean {
    return Boolean(this.commands.up || this.commands.allow || this.commands.batch);
  }

  /**
   * Whether `allow` and `revoke` run outside this process's one-at-a-time queue: with
   * `parallel = yes`, and in batch mode (where the batch command takes the lock itself).
   */
  get #outside(): boolean {
    return this.commands.parallel === 'yes' || Boolean(this.commands.batch);
  }

  /** Opens the path to one target, runs `fn`, and closes it whatever happens. */
  async withAccess<T>(target: Target, fn: () => Promise<T>): Promise<T> {
    await this.open(target);
    try {
      return await fn();
    } finally {
      await this.close(target);
    }
  }

  /** Runs `work` alone in this process and, holding the lock, alone among processes. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const locked = async () => {
      if (!this.configured) return work();
      const db = this.#lock();
      db.exec('BEGIN EXCLUSIVE');
      try {
        return await work();
      } finally {
        db.exec('COMMIT');
      }
    };
    const next = this.#queue.then(locked, locked);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #lock(): Database.Database {
    if (!this.#lockDb) {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      try {
        // better-sqlite3 is loaded here, at the guard's first use, not by every start.
        const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
        this.#lockDb = new Sqlite(join(this.#dir, 'guard.lock'));
        this.#lockDb.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);
      } catch (e) {
        throw new PasstoreError('io', `network guard: cannot open its lock ${join(this.#dir, 'guard.lock')}: ${(e as Error).message}`);
      }
    }
    return this.#lockDb;
  }

  /**
   * `up` (once, for this process's first target) and `allow` for this target. A target
   * already open is shared (counted); one being closed is opened again only once its
   * `revoke` is done, so a rule is never removed under a transfer that needs it.
   */
  async open(target: Target): Promise<void> {
    checkTarget(target);
    const key = `${target.address} ${target.port}`;
    for (;;) {
      const held = this.#open.get(key);
      if (!held) break;
      if (held.closing) {
        await held.closing.catch(() => undefined);
        continue;
      }
      held.count++;
      return held.ready;
    }
    const entry: OpenTarget = { target, count: 1, ready: Promise.resolve() };
    this.#open.set(key, entry);
    entry.ready = (async () => {
      try {
        if (this.commands.batch) {
          // The batch records the target, brings the network up if need be and allows it.
          await this.#batched('allow', target);
          return;
        }
        await this.#exclusive(async () => {
          this.#save(); // the target is recorded before its rule exists
          if (!this.#up) {
            this.#up = true;
            this.#save();
            await this.#run('up', target);
          }
          if (!this.#outside) await this.#allow(target);
        });
        if (this.#outside) await this.#allow(target);
      } catch (e) {
        entry.count = 0;
        entry.closing = this.#closeNow(key);
        await entry.closing.catch(() => undefined);
        throw e;
      }
    })();
    return entry.ready;
  }

  /** `revoke` for this target, and `down` once no live process has a target open. */
  async close(target: Target): Promise<void> {
    const key = `${target.address} ${target.port}`;
    const held = this.#open.get(key);
    if (!held || held.closing) return;
    if (--held.count > 0) return;
    await held.ready.catch(() => undefined);
    if (this.#open.get(key) !== held || held.closing || held.count > 0) return; // failed and closed, or taken again
    held.closing = this.#closeNow(key);
    await held.closing;
  }

  async #closeNow(key: string): Promise<void> {
    const held = this.#open.get(key)!;
    if (this.commands.batch) {
      // The batch revokes the target, then forgets it (and brings the network down when it was the last).
      return this.#batched('revoke', held.target, () => {
        if (this.#open.get(key) === held) this.#open.delete(key);
      });
    }
    let failure: unknown;
    const revoke = () => this.#revoke(held.target).catch((e) => (failure = e));
    const forget = async () => {
      // Recorded as closed only once its rule is gone.
      if (this.#open.get(key) === held) this.#open.delete(key);
      if (this.#open.size === 0 && this.#up) {
        if (!this.#othersHoldTargets()) await this.#run('down', held.target).catch((e) => (failure ??= e));
        this.#up = false;
      }
      this.#save();
    };
    if (this.#outside) {
      await revoke();
      await this.#exclusive(forget);
    } else {
      await this.#exclusive(async () => {
        await revoke();
        await forget();
      });
    }
    if (failure) throw failure;
  }

  #allow(target: Target): Promise<void> {
    return this.#run('allow', target);
  }

  #revoke(target: Target): Promise<void> {
    return this.#run('revoke', target);
  }

  /**
   * Queues a target for the next batch command; the targets that arrive while one batch
   * runs, to allow or to revoke, go together in the next one (revokes first). `forget`
   * drops a revoked target from this process's open set once its batch has run.
   */
  #batched(which: 'allow' | 'revoke', target: Target, forget?: () => void): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#batch.waiting.push({ which, target, forget, resolve, reject }));
    if (!this.#batch.running) {
      this.#batch.running = true;
      setImmediate(() => void this.#flush());
    }
    return done;
  }

  /**
   * Runs the waiting targets' batches one after the other. Each batch, under the lock:
   * writes the marker once (every target to allow is recorded before its rule exists,
   * and `up` before it runs), runs `up` when the network is down and the batch command,
   * then forgets the revoked targets, runs `down` when no live process holds a target,
   * and writes the marker again. With `parallel = yes` `up` runs beside the batch command
   * (the rules and the link are both in place before any target is used), and `down`
   * beside the batch that closes the last target. One lock and at most two marker writes
   * per batch, not per target.
   */
  async #flush(): Promise<void> {
    const batch = this.#batch;
    while (batch.waiting.length > 0) {
      const waiters = batch.waiting.splice(0).sort((a, b) => (a.which === b.which ? 0 : a.which === 'revoke' ? -1 : 1));
      const allows = waiters.filter((w) => w.which === 'allow');
      const revokes = waiters.filter((w) => w.which === 'revoke');
      const lines = waiters.map((w) => fill(this.commands[w.which === 'allow' ? 'batch_allow' : 'batch_revoke'] ?? '', w.target));
      const script = [this.commands.batch_begin, ...lines, this.commands.batch_end].filter((l) => l !== undefined).join('\n');
      const kinds = [...new Set(waiters.map((w) => w.which))].join(' and ');
      let failure: unknown;
      let upFailure: unknown;
      let downFailure: unknown;
      const command = () => this.#runWithInput(kinds, this.commands.batch!, `${script}\n`).catch((e) => (failure = e));
      const last = revokes.at(-1)?.target ?? allows[0]!.target;
      const down = () => this.#run('down', last).catch((e) => (downFailure ??= e));
      const before = async (): Promise<void> => {
        if (allows.length === 0) return;
        const up = !this.#up;
        this.#up = true;
        this.#save(); // the targets to allow are in #open already: recorded, and up, before either command runs
        if (up) await this.#run('up', allows[0]!.target).catch((e) => (upFailure ??= e));
      };
      // This batch closes every target of this process, and no live process holds one.
      const closesAll = () => allows.length === 0 && this.#up && [...this.#open.values()].every((h) => revokes.some((r) => sameTarget(r.target, h.target))) && !this.#othersHoldTargets();
      const after = async (downRan: boolean): Promise<void> => {
        for (const w of revokes) w.forget?.(); // recorded as closed only once the batch that revokes it has run
        if (downRan) this.#up = false;
        else if (this.#open.size === 0 && this.#up) {
          if (!this.#othersHoldTargets()) await down();
          this.#up = false;
        }
        this.#save();
      };
      try {
        await this.#exclusive(async () => {
          if (this.commands.parallel === 'yes') {
            // Commands safe to run at once: up beside the batch that opens, down beside the one that closes the last target.
            const downNow = closesAll();
            await Promise.all([before(), command(), downNow ? down() : undefined]);
            await after(downNow);
          } else {
            // One command at a time: up, then the batch (not its allows when up failed), then down.
            await before();
            if (!upFailure || revokes.length > 0) await command();
            await after(false);
          }
        });
      } catch (e) {
        failure ??= e;
        for (const w of revokes) w.forget?.(); // as when the command fails: never left waiting on a closing that ended
      }
      for (const w of waiters) {
        const why = failure ?? (w.which === 'revoke' ? downFailure : upFailure);
        if (why) w.reject(why);
        else w.resolve();
      }
    }
    batch.running = false;
  }

  async #run(which: 'up' | 'down' | 'allow' | 'revoke', target: Target | undefined): Promise<void> {
    const template = this.commands[which];
    if (!template) return;
    const argv = splitWords(template).map((w) => (target ? fill(w, target) : w.replaceAll('{address}', '').replaceAll('{port}', '')));
    try {
      await exec(argv[0]!, argv.slice(1), { timeout: 30_000 });
    } catch (e) {
      const err = e as { code?: unknown; stderr?: string };
      const why = (err.stderr ?? '').trim().split('\n')[0] || String(err.code ?? 'failed');
      throw new PasstoreError('io', `network guard: '${which}' command failed: ${why.slice(0, 200)}`);
    }
  }

  /** Runs the batch command with `input` on its standard input. */
  #runWithInput(which: string, template: string, input: string): Promise<void> {
    const argv = splitWords(template);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'], timeout: 30_000 });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.on('error', () => undefined); // a command that exits early is reported by its status
      child.on('error', (e: NodeJS.ErrnoException) => reject(new PasstoreError('io', `network guard: batch ${which} command failed: ${e.code ?? e.message}`)));
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new PasstoreError('io', `network guard: batch ${which} command failed: ${(stderr.trim().split('\n')[0] || (signal ?? `exit status ${code}`)).slice(0, 200)}`));
      });
      child.stdin.end(input);
    });
  }

  /** Writes this process's marker (or removes it when nothing is open). Under the lock. */
  #save(): void {
    if (!this.configured) return;
    if (this.#open.size === 0 && !this.#up) {
      rmSync(this.#marker, { force: true });
      return;
    }
    const marker: Marker = { pid: process.pid, started: this.#started, up: this.#up, targets: [...this.#open.values()].map((h) => h.target) };
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    writeFileSync(`${this.#marker}.tmp`, JSON.stringify(marker), { mode: 0o600 });
    renameSync(`${this.#marker}.tmp`, this.#marker);
  }

  /** The markers in the state directory other than this process's, each with whether its process lives. */
  #others(): Array<{ file: string; marker: Marker; live: boolean }> {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return [];
    }
    const found: Array<{ file: string; marker: Marker; live: boolean }> = [];
    for (const name of names) {
      const m = MARKER.exec(name);
      if (!m) continue;
      const file = join(this.#dir, name);
      if (file === this.#marker) continue;
      let marker: Marker;
      try {
        marker = JSON.parse(readFileSync(file, 'utf8')) as Marker;
        if (!Array.isArray(marker.targets)) throw new Error('no targets');
      } catch {
        // Unreadable: a write cut short. Its pid is in the name (none in the old single marker).
        marker = { pid: Number(m[2] ?? 0), up: true, targets: [] };
      }
      found.push({ file, marker, live: lives(marker) });
    }
    return found;
  }

  #othersHoldTargets(): boolean {
    return this.#others().some((o) => o.live && o.marker.targets.length > 0);
  }

  /**
   * Closes what crashed processes left open: `revoke` for each target their markers
   * record, then `down` unless a live process has a target open. Live processes' markers
   * are left alone. Returns how many targets were closed (at least 1 for a dead marker
   * with none, whose `up` may have run; 0 when nothing was left open).
   */
  async recover(): Promise<number> {
    if (!this.configured) return 0;
    return this.#exclusive(async () => {
      let closed = 0;
      let last: Target | undefined;
      for (const { file, marker, live } of this.#others()) {
        if (live) continue;
        for (const t of marker.targets) {
          checkTarget(t);
          await this.#revokeNow(t).catch(() => undefined);
          last = t;
        }
        closed += Math.max(marker.targets.length, 1);
        rmSync(file, { force: true });
      }
      if (closed > 0 && this.#open.size === 0 && !this.#othersHoldTargets()) {
        await this.#run('down', last).catch(() => undefined);
        this.#up = false;
        this.#save();
      }
      return closed;
    });
  }

  /** Revokes one target at once, by the single or the batch form. */
  #revokeNow(t: Target): Promise<void> {
    if (this.commands.revoke || !this.commands.batch) return this.#run('revoke', t);
    const script = [this.commands.batch_begin, fill(this.commands.batch_revoke ?? '', t), this.commands.batch_end].filter((l) => l !== undefined).join('\n');
    return this.#runWithInput('revoke', this.commands.batch, `${script}\n`);
  }
}

function sameTarget(a: Target, b: Target): boolean {
  return a.address === b.address && a.port === b.port;
}

function fill(template: string, t: Target): string {
  return template.replaceAll('{address}', t.address).replaceAll('{port}', String(t.port));
}

/** Linux: a process's start time in clock ticks since boot (stat field 22); elsewhere undefined. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `marker` still runs (the same process, not a reused pid). */
function lives(marker: Marker): boolean {
  if (!marker.pid || marker.pid === process.pid) return false;
  try {
    process.kill(marker.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!marker.started) return true;
  const now = processStart(marker.pid);
  return now === undefined || now === marker.started;
}

function checkTarget(t: Target): void {
  if (!isIP(t.address)) throw new PasstoreError('usage', `network guard: '${t.address}' is not an IP address`);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new PasstoreError('usage', `network guard: bad port ${t.port}`);
}
