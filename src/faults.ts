/**
 * Named steps of multi-step operations, where the fault tests kill or hold the process.
 * `PASSTORE_CRASH_AT=<step>` makes the process SIGKILL itself on reaching that step;
 * `PASSTORE_HOLD_AT=<step>` with `PASSTORE_HOLD_FILE=<path>` makes it write `<path>.held`
 * on reaching the step and wait there (the whole process) until `<path>` exists, so a test
 * can act while it stands between two steps. Test-only hooks that name the steps; unset,
 * they do nothing.
 */
import { existsSync, writeFileSync } from 'node:fs';

export function step(name: string): void {
  if (process.env.PASSTORE_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
  if (process.env.PASSTORE_HOLD_AT === name && process.env.PASSTORE_HOLD_FILE) hold(process.env.PASSTORE_HOLD_FILE);
}

function hold(file: string): void {
  writeFileSync(`${file}.held`, String(process.pid));
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 120_000;
  while (!existsSync(file) && Date.now() < deadline) Atomics.wait(cell, 0, 0, 25);
}
