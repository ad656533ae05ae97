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
 * target open; the same is done (without `down`) before any process brings the network up.
 * A target whose `revoke` failed (or could not run: the lock was not had) stays in the
 * marker as `stale` until a `revoke` of it succeeds, so `revoke` must succeed when the
 * rule is already gone; while one cannot be revoked, `up` does not run. The lock is
 * waited for without blocking the event loop, at most 60 s.
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
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type Database from 'better-sqlite3';
import { splitWords } from '../args.js';
import { errorMessage, PasstoreError } from '../errors.js';

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
  /** Targets no longer in use whose revoke failed: their rule may still exist. */
  stale?: Target[];
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
  /** Exits 0 while the target's rule exists, 1 once it does not: asked when a revoke fails. */
  check?: string;
  parallel?: string;
  batch?: string;
  batch_allow?: string;
  batch_revoke?: string;
  batch_begin?: string;
  batch_end?: string;
}

const MARKER = /^guard-open(\.(\d+))?\.json$/;
/** Said after a revoke that failed with no `check` configured: the rule may be gone already. */
const CHECK_HINT = '; if the rule is already gone, a check command in [network] lets passtore see it (passtore.conf(5))';
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
  key: string;
  entry: OpenTarget;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** How one target's line of a batch went: done, or failed (`ruleless`: its allow surely made no rule). */
type Outcome = { ok: true } | { ok: false; error: unknown; ruleless: boolean };

/** The guard lock was not had in time: nothing ran under it. */
class LockTimeout extends PasstoreError {}

/** Failures of a command that may have done part of its work (killed at the time limit, or by a signal). */
const uncertain = new WeakSet<object>();

export class NetworkGuard {
  #open = new Map<string, OpenTarget>();
  /**
   * Targets whose `revoke` failed or could not run: their rule may still exist, so they
   * stay in the marker (as `stale`) until a `revoke` succeeds: before this process brings
   * the network up again or opens the same target, or at the next start after it ended.
   */
  #stale = new Map<string, Target>();
  #up = false;
  /** Targets dead processes left open that a sweep before `up` closed, not yet audited. */
  #swept = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #lockDb: Database.Database | undefined;
  readonly #dir: string;
  readonly #marker: string;
  readonly #lockWaitMs: number;
  readonly #started = processStart(process.pid);
  #batch: { waiting: Waiter[]; running: boolean } = { waiting: [], running: false };

  constructor(
    private readonly commands: GuardCommands,
    stateDir: string,
    options: { lockWaitMs?: number } = {},
  ) {
    if (commands.batch && !(commands.batch_allow && commands.batch_revoke)) throw new PasstoreError('usage', '[network] batch needs batch_allow and batch_revoke (the line given for each target)');
    this.#dir = stateDir;
    this.#marker = join(stateDir, `guard-open.${process.pid}.json`);
    this.#lockWaitMs = options.lockWaitMs ?? LOCK_WAIT_MS;
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
      const db = await this.#begin();
      try {
        return await work();
      } finally {
        try {
          db.exec('COMMIT');
        } catch {
          db.exec('ROLLBACK');
        }
      }
    };
    const next = this.#queue.then(locked, locked);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Takes the lock: BEGIN EXCLUSIVE, tried again while another process holds it, without
   * blocking the event loop (timers, SSH, Ctrl-C go on), for at most the lock wait.
   */
  async #begin(): Promise<Database.Database> {
    const db = this.#lock();
    const deadline = Date.now() + this.#lockWaitMs;
    for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
      try {
        db.exec('BEGIN EXCLUSIVE');
        return db;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') throw new PasstoreError('io', `network guard: cannot take its lock ${join(this.#dir, 'guard.lock')}: ${(e as Error).message}`);
        if (Date.now() >= deadline) throw new LockTimeout('io', `network guard: another passtore process held the guard lock for ${Math.round(this.#lockWaitMs / 1000)} s`);
        await sleep(Math.min(pause, Math.max(deadline - Date.now(), 1)));
      }
    }
  }

  #lock(): Database.Database {
    if (!this.#lockDb) {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      try {
        // better-sqlite3 is loaded here, at the guard's first use, not by every start.
        const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
        this.#lockDb = new Sqlite(join(this.#dir, 'guard.lock'));
        // Never wait inside SQLite: that wait is synchronous and would freeze the process.
        this.#lockDb.pragma('busy_timeout = 0');
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
        // A closing always ends with its entry gone from #open; never spin on one that did not.
        if (this.#open.get(key) === held) throw new PasstoreError('io', `network guard: ${target.address}:${target.port} could not be closed`);
        continue;
      }
      held.count++;
      return held.ready;
    }
    const entry: OpenTarget = { target, count: 1, ready: Promise.resolve() };
    this.#open.set(key, entry);
    entry.ready = (async () => {
      let allowRan = false;
      try {
        if (this.commands.batch) {
          // The batch records the target, brings the network up if need be and allows it.
          await this.#batched('allow', key, entry);
          return;
        }
        await this.#exclusive(async () => {
          this.#save(); // the target is recorded before its rule exists
          if (!this.#up) {
            await this.#sweep(); // no rule left by a dead run (or by a failed revoke) is there when the network comes up
            this.#up = true;
            this.#save();
            await this.#run('up', target);
          } else if (this.#stale.has(key)) {
            await this.#revokeNow(target); // its old rule first: never two rules for one target
            this.#stale.delete(key);
          }
          if (!this.#outside) {
            allowRan = true;
            await this.#allow(target);
          }
        });
        if (this.#outside) {
          allowRan = true;
          await this.#allow(target);
        }
      } catch (e) {
        if (this.#open.get(key) !== entry) throw e; // a batch that made no rule for it has forgotten it already
        entry.count = 0;
        // Nothing to revoke when its allow never ran; nothing at all when the lock was not had.
        if (e instanceof LockTimeout) this.#open.delete(key);
        else {
          entry.closing = this.#closeNow(key, allowRan);
          await entry.closing.catch(() => undefined);
        }
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
    held.closing = this.#closeNow(key, true);
    await held.closing;
  }

  /**
   * Takes a target out of #open once its closing ended: forgotten when its rule is gone
   * (or never was), else kept as stale, still recorded in the marker.
   */
  #retire(key: string, held: OpenTarget, ruleGone: boolean): void {
    if (this.#open.get(key) === held) this.#open.delete(key);
    if (!ruleGone) this.#stale.set(key, held.target);
  }

  async #closeNow(key: string, revokeIt: boolean): Promise<void> {
    const held = this.#open.get(key)!;
    if (this.commands.batch) {
      // The batch revokes the target, then forgets it (and brings the network down when it was the last).
      return this.#batched('revoke', key, held);
    }
    let failure: unknown;
    let ruleGone = !revokeIt;
    const revoke = async () => {
      if (!revokeIt) return;
      await this.#revoke(held.target).then(
        () => (ruleGone = true),
        (e: unknown) => (failure = e),
      );
    };
    const forget = async () => {
      // Recorded as closed only once its rule is gone; kept (stale) when its revoke failed.
      this.#retire(key, held, ruleGone);
      if (this.#open.size === 0 && this.#up) {
        if (!this.#othersHoldTargets()) await this.#run('down', held.target).catch((e) => (failure ??= e));
        this.#up = false;
      }
      this.#save();
    };
    try {
      if (this.#outside) {
        await revoke();
        await this.#exclusive(forget);
      } else {
        await this.#exclusive(async () => {
          await revoke();
          await forget();
        });
      }
    } catch (e) {
      // The lock was not had (or the marker not written): the marker on disk still names the target.
      failure ??= e;
      this.#retire(key, held, ruleGone);
    }
    if (failure) throw failure;
  }

  #allow(target: Target): Promise<void> {
    return this.#run('allow', target);
  }

  #revoke(target: Target): Promise<void> {
    return this.#run('revoke', target).catch((e: unknown) => this.#goneAfter(e, target));
  }

  /**
   * After a failed revoke: resolves when the site's `check` says the target's rule does not
   * exist (a revoke tried again, or of a target recorded before its rule was made), else
   * throws the revoke's error (no `check`, the rule is there, or the check cannot tell).
   */
  async #goneAfter(failure: unknown, target: Target): Promise<void> {
    const template = this.commands.check;
    if (!template) throw failure;
    const argv = splitWords(template).map((w) => fill(w, target));
    const status = await new Promise<number | null>((resolve) => {
      execFile(argv[0]!, argv.slice(1), { timeout: 30_000 }, (err) => resolve(err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0));
    });
    if (status === 1) return;
    throw failure;
  }

  /**
   * Queues a target for the next batch command; the targets that arrive while one batch
   * runs, to allow or to revoke, go together in the next one (revokes first).
   */
  #batched(which: 'allow' | 'revoke', key: string, entry: OpenTarget): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#batch.waiting.push({ which, key, entry, resolve, reject }));
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
   *
   * The batch command applies all its lines or none (iptables-restore, nft -f): when a
   * batch of several lines fails, each line is run again alone, so one target's failure
   * never undoes the others'. A target whose revoke failed stays recorded (stale); one
   * whose allow surely made no rule is forgotten without a revoke.
   */
  async #flush(): Promise<void> {
    const batch = this.#batch;
    while (batch.waiting.length > 0) {
      const waiters = batch.waiting.splice(0).sort((a, b) => (a.which === b.which ? 0 : a.which === 'revoke' ? -1 : 1));
      const allows = waiters.filter((w) => w.which === 'allow');
      const revokes = waiters.filter((w) => w.which === 'revoke');
      const outcomes = new Map<Waiter, Outcome>();
      const parallel = this.commands.parallel === 'yes';
      let failure: unknown;
      let upFailure: unknown;
      let downFailure: unknown;
      let sent = false;
      const last = revokes.at(-1)?.entry.target ?? allows[0]!.entry.target;
      const down = () => this.#run('down', last).catch((e) => (downFailure ??= e));
      const refuse = (ws: Waiter[], error: unknown) => ws.forEach((w) => outcomes.set(w, { ok: false, error, ruleless: true }));
      const apply = async (ws: Waiter[]) => {
        if (ws.length === 0) return;
        sent = true;
        await this.#apply(ws, outcomes);
      };
      // This batch closes every target of this process, and no live process holds one.
      const closesAll = () => allows.length === 0 && this.#up && [...this.#open.values()].every((h) => revokes.some((r) => r.entry === h)) && !this.#othersHoldTargets();
      const after = async (downRan: boolean): Promise<void> => {
        // Recorded as closed only once a revoke of it succeeded.
        for (const w of revokes) this.#retire(w.key, w.entry, outcomes.get(w)?.ok === true);
        for (const w of allows) {
          const o = outcomes.get(w);
          if (o && !o.ok && o.ruleless && this.#open.get(w.key) === w.entry) this.#open.delete(w.key);
        }
        if (downRan) this.#up = false;
        else if (this.#open.size === 0 && this.#up) {
          if (!this.#othersHoldTargets()) await down();
          this.#up = false;
        }
        this.#save();
      };
      try {
        await this.#exclusive(async () => {
          if (allows.length === 0) {
            const downNow = parallel && closesAll();
            await Promise.all([apply(revokes), downNow ? down() : undefined]);
            await after(downNow);
            return;
          }
          let toAllow = allows;
          const bringUp = !this.#up;
          if (bringUp) {
            // No rule left by a dead run, or by a revoke of ours that failed, is there when the network comes up.
            const swept = await this.#sweep().then(
              () => undefined,
              (e: unknown) => e,
            );
            if (swept) {
              refuse(allows, swept);
              toAllow = [];
            }
          } else {
            for (const w of allows) {
              if (!this.#stale.has(w.key)) continue;
              // Its old rule first: never two rules for one target.
              await this.#revokeNow(w.entry.target).then(
                () => this.#stale.delete(w.key),
                (e: unknown) => refuse([w], e),
              );
            }
            toAllow = allows.filter((w) => !outcomes.has(w));
          }
          const up = bringUp && toAllow.length > 0;
          if (up) this.#up = true;
          // The targets to allow are in #open already: recorded, and up, before any command
          // starts (a plain statement: when the write fails, no command runs).
          try {
            this.#save();
          } catch (e) {
            if (up) this.#up = false;
            throw e;
          }
          const bringingUp = () => (up ? this.#run('up', allows[0]!.entry.target).catch((e) => (upFailure ??= e)) : undefined);
          if (parallel) {
            // Commands safe to run at once: up beside the batch that opens.
            await Promise.all([bringingUp(), apply([...revokes, ...toAllow])]);
          } else {
            // One command at a time: up, then the batch; no allow lines when up failed.
            await bringingUp();
            if (upFailure) refuse(toAllow, upFailure);
            await apply(upFailure ? revokes : [...revokes, ...toAllow]);
          }
          await after(false);
        });
      } catch (e) {
        failure = e;
        // The lock, the marker or `down` failed. Undecided revokes stay recorded; an allow
        // whose line was sent may have its rule, so it is revoked (its open fails and closes it).
        for (const w of revokes) this.#retire(w.key, w.entry, outcomes.get(w)?.ok === true);
        for (const w of allows) {
          if (!outcomes.has(w) && !sent && this.#open.get(w.key) === w.entry) this.#open.delete(w.key);
        }
      }
      for (const w of waiters) {
        const o = outcomes.get(w);
        const why = o && !o.ok ? o.error : (failure ?? (w.which === 'revoke' ? downFailure : upFailure));
        if (why) w.reject(why);
        else w.resolve();
      }
    }
    batch.running = false;
  }

  /**
   * Runs the batch command for these targets and records each one's outcome; when a batch
   * of several lines fails cleanly (applied nothing), runs each line again alone. A batch
   * killed at the time limit may have applied its lines: its allows are not taken as
   * ruleless, nor tried again (a second rule would outlive the one revoke).
   */
  async #apply(ws: Waiter[], outcomes: Map<Waiter, Outcome>): Promise<void> {
    const script = (list: Waiter[]) => `${[this.commands.batch_begin, ...list.map((w) => fill(this.commands[w.which === 'allow' ? 'batch_allow' : 'batch_revoke'] ?? '', w.entry.target)), this.commands.batch_end].filter((l) => l !== undefined).join('\n')}\n`;
    const kinds = [...new Set(ws.map((w) => w.which))].join(' and ');
    try {
      await this.#runWithInput(kinds, this.commands.batch!, script(ws));
      for (const w of ws) outcomes.set(w, { ok: true });
      return;
    } catch (e) {
      if (ws.length === 1 || uncertain.has(e as object)) {
        for (const w of ws) {
          // A lone revoke that failed cleanly: gone all the same when `check` says so.
          const gone = w.which === 'revoke' && ws.length === 1 && !uncertain.has(e as object) && (await this.#goneAfter(e, w.entry.target).then(() => true, () => false));
          outcomes.set(w, gone ? { ok: true } : { ok: false, error: e, ruleless: !uncertain.has(e as object) });
        }
        return;
      }
    }
    for (const w of ws) {
      try {
        if (w.which === 'revoke') await this.#revokeNow(w.entry.target);
        else await this.#runWithInput('allow', this.commands.batch!, script([w]));
        outcomes.set(w, { ok: true });
      } catch (e) {
        outcomes.set(w, { ok: false, error: e, ruleless: !uncertain.has(e as object) });
      }
    }
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
        if (code === 0) return resolve();
        const e = new PasstoreError('io', `network guard: batch ${which} command failed: ${(stderr.trim().split('\n')[0] || (signal ?? `exit status ${code}`)).slice(0, 200)}`);
        if (signal) uncertain.add(e); // killed (the time limit): it may have applied its lines
        reject(e);
      });
      child.stdin.end(input);
    });
  }

  /** Writes this process's marker (or removes it when nothing is open or stale). Under the lock. */
  #save(): void {
    if (!this.configured) return;
    try {
      if (this.#open.size === 0 && this.#stale.size === 0 && !this.#up) {
        rmSync(this.#marker, { force: true });
        return;
      }
      const marker: Marker = { pid: process.pid, started: this.#started, up: this.#up, targets: [...this.#open.values()].map((h) => h.target), stale: [...this.#stale.values()] };
      writeMarker(this.#dir, this.#marker, marker);
    } catch (e) {
      throw new PasstoreError('io', `network guard: cannot write its marker ${this.#marker}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
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
        if (!Array.isArray(marker.targets) || (marker.stale !== undefined && !Array.isArray(marker.stale))) throw new Error('no targets');
      } catch {
        // Unreadable: a write cut short. Its pid is in the name (none in the old single marker).
        marker = { pid: Number(m[2] ?? 0), up: true, targets: [] };
      }
      found.push({ file, marker, live: lives(marker) });
    }
    return found;
  }

  /** Whether a live process has a target open (its stale targets are used by nobody). */
  #othersHoldTargets(): boolean {
    return this.#others().some((o) => o.live && o.marker.targets.length > 0);
  }

  /**
   * Revokes what dead processes' markers record (their open and stale targets): a marker
   * is removed once all its revokes succeeded, else kept with the targets whose revoke
   * failed. Under the lock.
   */
  async #recoverDead(): Promise<{ closed: number; last?: Target; failed: string[] }> {
    let closed = 0;
    let last: Target | undefined;
    const failed: string[] = [];
    for (const { file, marker, live } of this.#others()) {
      if (live) continue;
      const all = [...marker.targets, ...(marker.stale ?? [])];
      const left: Target[] = [];
      for (const t of all) {
        checkTarget(t);
        try {
          await this.#revokeNow(t);
          closed++;
          last = t;
        } catch (e) {
          left.push(t);
          failed.push(`${t.address}:${t.port} (${errorMessage(e)})`);
        }
      }
      if (left.length > 0) writeMarker(this.#dir, file, { ...marker, targets: [], stale: left });
      else {
        if (all.length === 0) closed++; // its `up` may have run
        rmSync(file, { force: true });
      }
    }
    return { closed, last, failed };
  }

  /**
   * Before `up`, under the lock: revokes what dead processes left and this process's stale
   * targets; throws (and `up` does not run) when a revoke fails, since that rule would be
   * live with the network up.
   */
  async #sweep(): Promise<void> {
    const { closed, failed } = await this.#recoverDead();
    this.#swept += closed;
    for (const [key, t] of this.#stale) {
      try {
        await this.#revokeNow(t);
        this.#stale.delete(key);
      } catch (e) {
        failed.push(`${t.address}:${t.port} (${errorMessage(e)})`);
      }
    }
    // A live process's stale targets are used by nobody, but their rules would be live with
    // the network up too: revoked here as well (that process's own retry then finds them
    // gone), and `up` refused while one cannot be.
    for (const { marker, live } of this.#others()) {
      if (!live) continue;
      for (const t of marker.stale ?? []) {
        checkTarget(t);
        if (marker.targets.some((o) => sameTarget(o, t))) continue;
        await this.#revokeNow(t).catch((e: unknown) => failed.push(`${t.address}:${t.port} (${errorMessage(e)})`));
      }
    }
    if (failed.length > 0) {
      this.#save();
      throw new PasstoreError('io', `network guard: not bringing the network up: a rule left open could not be revoked: ${failed[0]}${failed.length > 1 ? ` and ${failed.length - 1} more` : ''}${this.commands.check ? '' : CHECK_HINT}`);
    }
  }

  /**
   * Closes what crashed processes left open: `revoke` for each target their markers
   * record, then `down` unless a live process has a target open. Live processes' markers
   * are left alone. Returns how many targets were closed (at least 1 for a dead marker
   * with none, whose `up` may have run; 0 when nothing was left open). When a revoke
   * fails its target stays in the marker, to be tried again, and this throws after the
   * others are done.
   */
  async recover(): Promise<number> {
    if (!this.configured) return 0;
    return this.#exclusive(async () => {
      const { closed, last, failed } = await this.#recoverDead();
      if ((closed > 0 || failed.length > 0) && this.#open.size === 0 && !this.#othersHoldTargets()) {
        await this.#run('down', last).catch(() => undefined);
        this.#up = false;
        this.#save();
      }
      if (failed.length > 0) throw new PasstoreError('io', `network guard: could not revoke ${failed.length === 1 ? 'a target' : `${failed.length} targets`} an earlier run left open, kept in its marker to be tried again: ${failed[0]}${failed.length > 1 ? ` and ${failed.length - 1} more` : ''}${this.commands.check ? '' : CHECK_HINT}`);
      return closed;
    });
  }

  /** How many targets left open by dead processes were closed before an `up` since the last call (for the audit trail). */
  takeSwept(): number {
    const n = this.#swept;
    this.#swept = 0;
    return n;
  }

  /** Revokes one target at once, by the single or the batch form. */
  #revokeNow(t: Target): Promise<void> {
    if (this.commands.revoke || !this.commands.batch) return this.#revoke(t);
    const script = [this.commands.batch_begin, fill(this.commands.batch_revoke ?? '', t), this.commands.batch_end].filter((l) => l !== undefined).join('\n');
    return this.#runWithInput('revoke', this.commands.batch, `${script}\n`).catch((e: unknown) => this.#goneAfter(e, t));
  }
}

function writeMarker(dir: string, file: string, marker: Marker): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(`${file}.tmp`, JSON.stringify(marker), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
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
