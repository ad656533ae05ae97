/**
 * Benchmark helper, loaded only by vault-shell.bench.ts into the real `passtore` binary
 * (`node --import …/scrypt-timer.js dist/src/bin/passtore.js`). It wraps node:crypto's
 * scrypt so that each call appends its duration in milliseconds to the file named by
 * $PASSTORE_BENCH_SCRYPT_LOG; the benchmark can then take exactly the key derivation
 * out of the start-up figure. It changes nothing else, and does nothing without the
 * variable.
 */
import crypto from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

type Callback = (err: Error | null, key: Buffer) => void;

const log = process.env.PASSTORE_BENCH_SCRYPT_LOG;
if (log) {
  const original = crypto.scrypt as unknown as (...args: unknown[]) => void;
  const timed = (...args: unknown[]): void => {
    const callback = args.pop() as Callback;
    const start = performance.now();
    original.call(crypto, ...args, (err: Error | null, key: Buffer) => {
      appendFileSync(log, `${(performance.now() - start).toFixed(3)}\n`);
      callback(err, key);
    });
  };
  (crypto as unknown as { scrypt: unknown }).scrypt = timed;
  // `import { scrypt } from 'node:crypto'` in the program sees the wrapper too.
  syncBuiltinESMExports();
}
