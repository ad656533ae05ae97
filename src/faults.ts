/**
 * Test hooks of the production programs, and the one switch that lets them act.
 *
 * `PASSTORE_CRASH_AT=<step>` makes the process SIGKILL itself on reaching that named step,
 * and `PASSTORE_SCRYPT_LOG_N` lowers the cost of new passphrase slots (kdf.ts). Both are
 * ignored unless `PASSTORE_TEST_SWITCHES=for-tests-only` is set as well: an installed
 * passtore whose environment merely carries one of them behaves as if it were unset.
 */
export const TEST_SWITCH = 'PASSTORE_TEST_SWITCHES';
export const TEST_SWITCH_VALUE = 'for-tests-only';

/** True when the environment says this process runs under the test suite. */
export function testSwitchesOn(): boolean {
  return process.env[TEST_SWITCH] === TEST_SWITCH_VALUE;
}

export function step(name: string): void {
  if (process.env.PASSTORE_CRASH_AT === name && testSwitchesOn()) process.kill(process.pid, 'SIGKILL');
}
