/**
 * Bounded concurrency for operations over many hosts: at most `limit` at once, a progress
 * callback after each, and every result kept (a failure does not stop the others). Once
 * `signal` is aborted (Ctrl-C, SIGHUP, SIGTERM) no new item starts: those in flight run to
 * their end (each is crash-safe on its own), the rest are reported as not started. An item
 * whose `fn` gave up at the cancel itself (PasstoreError 'cancelled' once `signal` is
 * aborted: it was still connecting to its host, nothing sent) counts as not started too.
 */
import { cancelledBy } from './cancel.js';
import { PasstoreError } from './errors.js';

export interface Outcome<T, R> {
  item: T;
  ok: boolean;
  value?: R;
  error?: unknown;
  /**
   * Nothing was done for this item: the pool was cancelled before it started, or its `fn`
   * gave up at the cancel before changing anything (still connecting to its host).
   */
  notStarted?: boolean;
}

/** How a result table shows an item the cancel kept from starting. */
export const NOT_STARTED = 'not started (cancelled)';

export async function runPool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
  progress?: (done: number, total: number) => void,
  signal?: AbortSignal,
): Promise<Array<Outcome<T, R>>> {
  const results: Array<Outcome<T, R>> = new Array(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length && !signal?.aborted) {
      const i = next++;
      const item = items[i]!;
      try {
        results[i] = { item, ok: true, value: await fn(item) };
      } catch (error) {
        results[i] = cancelledBy(error, signal) ? { item, ok: false, error, notStarted: true } : { item, ok: false, error };
      }
      progress?.(++done, items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  for (let i = 0; i < items.length; i++) {
    results[i] ??= { item: items[i]!, ok: false, notStarted: true, error: new PasstoreError('cancelled', NOT_STARTED) };
  }
  return results;
}

/** How many items a cancel kept from starting (0 when the pool ran to its end). */
export function notStartedCount(results: Array<Outcome<unknown, unknown>>): number {
  return results.filter((r) => r.notStarted).length;
}
