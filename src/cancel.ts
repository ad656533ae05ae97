/**
 * Cancelling a running command (Ctrl-C in the shell). The shell gives each command line
 * an AbortSignal (the command reads it as `input.signal`); a command that reads or works
 * long checks it at points where stopping leaves nothing half done, and ends with
 * PasstoreError('cancelled') saying what was kept. A loop whose steps never wait for I/O
 * (OpenSSL parsing, SQLite) lets the event loop run now and then, so the key is seen.
 */
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
