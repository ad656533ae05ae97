#!/usr/bin/env node
/** `passtore-cron`: see src/cron/main.ts and passtore-cron(8). */
import { main } from '../cron/main.js';

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
    setImmediate(() => process.exit(status));
  },
  () => process.exit(1),
);
