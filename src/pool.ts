/**
 * Bounded concurrency for operations over many hosts: at most `limit` at once, a progress
 * callback after each, and every result kept (a failure does not stop the others).
 */
export interface Outcome<T, R> {
  item: T;
  ok: boolean;
  value?: R;
  error?: unknown;
}

export async function runPool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>, progress?: (done: number, total: number) => void): Promise<Array<Outcome<T, R>>> {
  const results: Array<Outcome<T, R>> = new Array(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i]!;
      try {
        results[i] = { item, ok: true, value: await fn(item) };
      } catch (error) {
        results[i] = { item, ok: false, error };
      }
      progress?.(++done, items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
