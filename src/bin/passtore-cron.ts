#!/usr/bin/env node
/** `passtore-cron`: see src/cron/main.ts and passtore-cron(8). */
import { main } from '../cron/main.js';
import { errorMessage } from '../errors.js';
import { forbidCoreDumps } from '../no-core.js';

// Before the key file is read: no core dump may hold a key or a secret.
try {
  forbidCoreDumps();
} catch (e) {
  process.stdout.write(`passtore-cron: ${errorMessage(e)}\n`);
  process.exit(2);
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
    // Exit once everything written has been flushed: a pipe must not lose the report's tail.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));
  },
  () => process.exit(1),
);
