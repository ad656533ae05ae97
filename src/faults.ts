/**
 * Test hooks of the production programs, and the one switch that lets them act.
 *
 * Named steps of multi-step operations, where the fault tests kill or hold the process.
 * `PASSTORE_CRASH_AT=<step>` makes the process SIGKILL itself on reaching that step;
 * `PASSTORE_HOLD_AT=<step>` with `PASSTORE_HOLD_FILE=<path>` makes it write `<path>.held`
 * on reaching the step and wait there (the whole process) until `<path>` exists, so a test
 * can act while it stands between two steps. `PASSTORE_SCRYPT_LOG_N` lowers the cost of
 * new passphrase slots (kdf.ts). All are ignored unless
 * `PASSTORE_TEST_SWITCHES=for-tests-only` is set as well: an installed passtore whose
 * environment merely carries one of them behaves as if it were unset.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';

export const TEST_SWITCH = 'PASSTORE_TEST_SWITCHES';
export const TEST_SWITCH_VALUE = 'for-tests-only';

/** True when the environment says this process runs under the test suite. */
export function testSwitchesOn(): boolean {
  return process.env[TEST_SWITCH] === TEST_SWITCH_VALUE;
}

export function step(name: string): void {
  if (!testSwitchesOn()) return;
  if (process.env.PASSTORE_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
  if (process.env.PASSTORE_HOLD_AT === name && process.env.PASSTORE_HOLD_FILE) hold(process.env.PASSTORE_HOLD_FILE);
}

function hold(file: string): void {
  // Written whole under another name first: a test polling for `.held` never reads it empty.
  writeFileSync(`${file}.held.${process.pid}`, String(process.pid));
  renameSync(`${file}.held.${process.pid}`, `${file}.held`);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 120_000;
  while (!existsSync(file) && Date.now() < deadline) Atomics.wait(cell, 0, 0, 25);
}
