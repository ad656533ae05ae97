#!/usr/bin/env node
/** `passtore-cron`: see src/cron/main.ts and passtore-cron(8). */
import { main } from '../cron/main.js';

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
    // Exit once everything written has been flushed: a pipe must not lose the report's tail.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));
  },
  () => process.exit(1),
);
