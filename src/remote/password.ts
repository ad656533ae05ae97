/**
 * Changing a password on a host without ever losing one (SPEC section 7): the new
 * password is stored as pending (encrypted, bound to the entry and its next version)
 * before the host is touched; it goes to `chpasswd` on standard input; a fresh login with
 * it confirms it; only then is it made current and the old one kept as history. When any
 * step fails or the process dies, `reconcile` tries both passwords and keeps the one the
 * host accepts.
 */
import { cancelledBy } from '../cancel.js';
import { PasstoreError } from '../errors.js';
import { step } from '../faults.js';
import { formatSpec } from '../names.js';
import type { Secret } from '../secret.js';
import type { Context } from '../command.js';
import type { EntryRow, HostRow } from '../storage/store.js';

/** What a password change on a host uses of the session's context. */
export type PasswordDeps = Pick<Context, 'store' | 'vault' | 'remote' | 'operator' | 'audit' | 'change'>;

const now = () => new Date().toISOString();

/** Makes an entry's pending password current (the old one goes to history). */
async function promote(deps: PasswordDeps, entry: EntryRow, detail: string): Promise<void> {
  await deps.change(async (tx) => {
    const fresh = await tx.getEntry(entry.fqdn, entry.user, entry.service);
    if (!fresh?.pendingCiphertext || fresh.pendingVersion === null) return;
    if (fresh.secretCiphertext) {
      await tx.archiveEntry({ fqdn: fresh.fqdn, user: fresh.user, service: fresh.service, version: fresh.version, secretCiphertext: fresh.secretCiphertext, reason: 'updated', archivedAt: now(), archivedBy: deps.operator });
    }
    // The pending ciphertext is bound to this entry at pendingVersion: it moves as it is.
    await tx.updateEntry(fresh.id, fresh.version, { version: fresh.pendingVersion, state: 'set', secretCiphertext: fresh.pendingCiphertext, updatedAt: now(), updatedBy: deps.operator });
    await tx.setPending(fresh.id, null, null, null);
    await deps.audit({ action: 'update', target: formatSpec(fresh), outcome: 'ok', detail }, tx);
  });
}

async function dropPending(deps: PasswordDeps, entry: EntryRow, detail: string): Promise<void> {
  await deps.change(async (tx) => {
    await tx.setPending(entry.id, null, null, null);
    await deps.audit({ action: 'update', target: formatSpec(entry), outcome: 'failed', detail }, tx);
  });
}

/**
 * Changes the password of `entry` on `host` and in the vault. `signal` (Ctrl-C, SIGHUP,
 * SIGTERM) gives up only while SSH connects for chpasswd, before anything is sent: the
 * pending password is dropped and PasstoreError('cancelled') thrown. Once connected, the
 * change runs to its end (chpasswd, the confirming login, the vault).
 */
export async function changeOnHost(deps: PasswordDeps, host: HostRow, entry: EntryRow, fresh: Secret, signal?: AbortSignal): Promise<void> {
  if (entry.service !== 'ssh') throw new PasstoreError('usage', `${formatSpec(entry)}: only :ssh entries (system accounts) can be changed on the host`);
  if (fresh.bytes().includes(0x0a)) throw new PasstoreError('usage', 'a password cannot hold a newline');
  // Everything needed to reach the host is checked before anything is stored.
  await deps.remote.checkAccess(host);
  const version = (await deps.store.lastVersion(entry.fqdn, entry.user, entry.service)) + 1;
  await deps.change(async (tx) => {
    await tx.setPending(entry.id, deps.vault.sealPassword({ fqdn: entry.fqdn, user: entry.user, service: entry.service, version }, fresh), version, now());
    await deps.audit({ action: 'update-pending', target: formatSpec(entry), outcome: 'ok' }, tx);
  });
  step('passwd-pending-stored');
  /** Whether the connection for chpasswd was made (from then on the host may change). */
  let reached = false;
  try {
    await deps.remote.asRoot(host, async (conn) => {
      reached = true;
      const line = Buffer.concat([Buffer.from(`${entry.user}:`), fresh.bytes(), Buffer.from('\n')]);
      try {
        const r = await conn.execRoot(['chpasswd'], line);
        if (r.code !== 0) throw new PasstoreError('io', `${host.fqdn}: chpasswd failed: ${r.stderr.trim().split('\n')[0] ?? `status ${r.code}`}`);
      } finally {
        line.fill(0);
      }
    }, { signal });
    step('passwd-chpasswd-done');
    if (!(await deps.remote.confirmPassword(host, entry.user, fresh))) {
      throw new PasstoreError('mismatch', `${host.fqdn}: the new password was set but neither a fresh login with it nor the host's shadow entry confirms it`);
    }
    step('passwd-verified');
  } catch (e) {
    // Cancelled while connecting: chpasswd never ran, the host has the old password.
    if (!reached && cancelledBy(e, signal)) {
      await dropPending(deps, entry, 'cancelled while connecting; nothing sent to the host');
      throw new PasstoreError('cancelled', 'cancelled; the password is unchanged');
    }
    // Whatever happened, settle on the password the host accepts now.
    const pending = await deps.store.getEntry(entry.fqdn, entry.user, entry.service);
    if (pending) await reconcileEntry(deps, host, pending).catch(() => undefined);
    throw e;
  }
  await promote(deps, entry, 'changed on the host');
}

export type Reconciled = 'pending-kept' | 'old-kept' | 'unresolved';

/**
 * Resolves one interrupted change by trying the pending password, then the current one.
 * `signal` gives up a login being made (PasstoreError 'cancelled'), the entry left pending.
 */
export async function reconcileEntry(deps: PasswordDeps, host: HostRow, entry: EntryRow, signal?: AbortSignal): Promise<Reconciled> {
  const pending = deps.vault.openPending(entry);
  try {
    if (await deps.remote.confirmPassword(host, entry.user, pending, signal)) {
      await promote(deps, entry, 'reconciled: the host accepts the new password');
      return 'pending-kept';
    }
  } finally {
    pending.wipe();
  }
  if (entry.state === 'set') {
    const current = deps.vault.openPassword(entry);
    try {
      if (await deps.remote.confirmPassword(host, entry.user, current, signal)) {
        await dropPending(deps, entry, 'reconciled: the host still has the old password');
        return 'old-kept';
      }
    } finally {
      current.wipe();
    }
  }
  await deps.audit({ action: 'reconcile', target: formatSpec(entry), outcome: 'failed', detail: 'neither password logs in; both kept' });
  return 'unresolved';
}
