/**
 * Failed unlocks in the system log. The audit trail's record of a failed unlock is written
 * without any key (none is held), so until the next unlock seals it into the chain
 * (vault/audit.ts, `sealUnsealed`) whoever can write the database could remove it. The
 * system log is out of that person's reach: each failed unlock is also sent there, with
 * `logger` run from an argument vector (no shell), naming the vault and the operator or
 * key file, never a secret. A system without `logger` or a log socket loses only this
 * copy: the unlock goes on as before.
 */
import { spawn } from 'node:child_process';

/** The argument vector for `logger` (tested; no shell ever sees it). */
export function failedUnlockArgs(vaultId: string, who: string): string[] {
  const safe = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
  return ['-t', 'passtore', '-p', 'authpriv.warning', '--', `failed unlock of vault ${safe(vaultId)} by ${safe(who)}`];
}

/** Sends one failed unlock to the system log; never fails, never waits. */
export function logFailedUnlock(vaultId: string, who: string): void {
  try {
    const child = spawn('logger', failedUnlockArgs(vaultId, who), { stdio: 'ignore', detached: false });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // No logger here: the audit trail still has the record.
  }
}
