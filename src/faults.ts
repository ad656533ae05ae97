/**
 * Named steps of multi-step operations, where the fault tests kill the process.
 * `PASSTORE_CRASH_AT=<step>` makes the process SIGKILL itself on reaching that step: a
 * test-only hook that names the steps; unset, it does nothing.
 */
export function step(name: string): void {
  if (process.env.PASSTORE_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}
