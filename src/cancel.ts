/**
 * Cancelling a running command (Ctrl-C in the shell). The shell gives each command line
 * an AbortSignal (the command reads it as `input.signal`); a command that reads or works
 * long checks it at points where stopping leaves nothing half done, and ends with
 * PasstoreError('cancelled') saying what was kept. A loop whose steps never wait for I/O
 * (OpenSSL parsing, SQLite) lets the event loop run now and then, so the key is seen.
 */
import { constants as osConstants } from 'node:os';
import { PasstoreError } from './errors.js';

/** How often a busy loop lets the event loop run (ms): short enough to feel immediate. */
const YIELD_EVERY_MS = 25;

/** Never aborted: the signal of a command run with none (passtore-cron, tests). */
export const NEVER: AbortSignal = new AbortController().signal;

export class Cancel {
  #last = performance.now();

  constructor(
    readonly signal: AbortSignal | undefined,
    /** The error's text when cancelled (the session puts the command's name before it). */
    readonly message = 'cancelled',
  ) {}

  get aborted(): boolean {
    return this.signal?.aborted ?? false;
  }

  /** Throws PasstoreError('cancelled') once the signal is aborted. */
  check(): void {
    if (this.signal?.aborted) throw new PasstoreError('cancelled', this.message);
  }

  /**
   * A point in a long loop where stopping is safe: every 25 ms it lets the event loop run
   * (so a Ctrl-C typed meanwhile is read), then checks.
   */
  async point(): Promise<void> {
    if (this.signal && this.signal !== NEVER && performance.now() - this.#last >= YIELD_EVERY_MS) {
      // Twice: the first may run in this very turn of the loop (when it was scheduled from
      // an I/O callback); the second comes after the loop has polled for input once more.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      this.#last = performance.now();
    }
    this.check();
  }
}

/** Whether `e` is the cancel of `signal` (not a prompt's own Ctrl-C or another failure). */
export function cancelledBy(e: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && e instanceof PasstoreError && e.code === 'cancelled';
}

/** How long a process asked to stop (SIGHUP, SIGTERM) waits for the command it aborted. */
export const STOP_GRACE_MS = 30_000;

/** The exit status of a process that stopped on `signal`, as a shell reports it (128 + its number). */
export function signalStatus(signal: NodeJS.Signals): number {
  return 128 + (osConstants.signals[signal] ?? 0);
}

/**
 * SIGHUP (the terminal closed) and SIGTERM (shutdown, systemd): instead of dying at once
 * with the network guard open, `stop` aborts what runs and lets it finish (its finally
 * blocks revoke the guard's rules and take the link down); the process exits by itself
 * when that is done, or with 128 + the signal's number after `graceMs` at the latest.
 * A second signal while stopping changes nothing. Returns a function that removes the handlers.
 */
export function onStopSignals(stop: (signal: NodeJS.Signals) => void, graceMs = STOP_GRACE_MS, signals: NodeJS.Signals[] = ['SIGHUP', 'SIGTERM']): () => void {
  let got: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (got) return;
    got = signal;
    setTimeout(() => process.exit(signalStatus(signal)), graceMs).unref();
    stop(signal);
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
