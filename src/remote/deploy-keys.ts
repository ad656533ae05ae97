/**
 * The vault-held SSH deploy key on the hosts (`sshkey`): making one, installing its public
 * line in the login user's `~/.ssh/authorized_keys`, and rotating it so that no host is
 * ever left reachable by neither key. A rotation stores the new key (state `next`) before
 * any host is touched; every login tries current, next and previous keys, so a rotation
 * cut short at any step leaves each host reachable, and running it again finishes it.
 */
import type { Context } from '../command.js';
import { PasstoreError } from '../errors.js';
import { step } from '../faults.js';
import { runPool } from '../pool.js';
import { blobOf, generateDeployKey } from '../ssh/deploy-key.js';
import type { SshConnection } from '../ssh/ssh.js';
import type { HostRow, SshKeyRow } from '../storage/store.js';
import { now } from '../targets.js';

/** What the sshkey commands need from the session. */
export type KeyDeps = Pick<Context, 'store' | 'vault' | 'remote' | 'operator' | 'audit' | 'change'>;

// Appends the line on standard input to ~/.ssh/authorized_keys of the login user, once
// ($1: its key blob); directory 0700, file 0600; a link or odd file there is refused.
const INSTALL_KEY = [
  'set -e',
  'umask 077',
  'cd',
  'if [ -L .ssh ] || { [ -e .ssh ] && [ ! -d .ssh ]; }; then echo "~/.ssh is not a plain directory" >&2; exit 3; fi',
  '[ -d .ssh ] || mkdir -m 0700 .ssh',
  'chmod 0700 .ssh',
  'f=.ssh/authorized_keys',
  'if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then echo "~/.ssh/authorized_keys is not a plain file" >&2; exit 3; fi',
  'IFS= read -r line',
  'if [ -f "$f" ] && awk -v b="$1" \'{ for (i = 1; i <= NF; i++) if ($i == b) found = 1 } END { exit !found }\' "$f"; then chmod 0600 "$f"; echo present; exit 0; fi',
  'if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then printf "\\n" >> "$f"; fi',
  'printf "%s\\n" "$line" >> "$f"',
  'chmod 0600 "$f"',
  'echo added',
].join('\n');

// Removes every line holding one of the key blobs $1… from ~/.ssh/authorized_keys: the
// rest is written to a new file in the same directory and renamed over it.
const REMOVE_KEYS = [
  'set -e',
  'umask 077',
  'cd',
  'f=.ssh/authorized_keys',
  'if [ -L "$f" ] || [ ! -f "$f" ]; then echo absent; exit 0; fi',
  'blobs="$*"',
  'awk -v blobs="$blobs" \'BEGIN { n = split(blobs, b, " ") } { keep = 1; for (i = 1; i <= NF; i++) for (j = 1; j <= n; j++) if ($i == b[j]) keep = 0 } keep\' "$f" > "$f.passtore-new"',
  'chmod 0600 "$f.passtore-new"',
  'mv -f "$f.passtore-new" "$f"',
  'echo removed',
].join('\n');

/** The key in use, or an error saying how to make one. */
export async function currentKey(deps: Pick<KeyDeps, 'store'>): Promise<SshKeyRow> {
  const key = (await deps.store.listSshKeys()).find((k) => k.state === 'current');
  if (!key) throw new PasstoreError('not-found', 'the vault holds no deploy key; make one with sshkey create');
  return key;
}

/** Makes and stores a new deploy key in `state`; returns its row. */
export async function createKey(deps: KeyDeps, state: 'current' | 'next'): Promise<SshKeyRow> {
  const made = generateDeployKey(`passtore-deploy-${now().slice(0, 10)}`);
  try {
    // Sealed inside the vault's transaction, under the data key current there.
    return await deps.change(async (tx) => {
      const row = { publicKey: made.publicKey, fingerprint: made.fingerprint, state, keyCiphertext: deps.vault.sealSshKey(made.fingerprint, made.pkcs8), createdAt: now(), createdBy: deps.operator };
      const id = await tx.insertSshKey(row);
      await deps.audit({ action: 'sshkey-create', target: 'deploy-key', outcome: 'ok', detail: `${made.fingerprint}${state === 'next' ? ' (rotation)' : ''}` }, tx);
      return { id, ...row };
    });
  } finally {
    made.pkcs8.fill(0);
  }
}

/** Appends the key's line once to the login user's authorized_keys (as that user, not root). */
async function appendLine(conn: SshConnection, key: SshKeyRow): Promise<'added' | 'present'> {
  const r = await conn.exec(['sh', '-c', INSTALL_KEY, 'sh', blobOf(key.publicKey)], `${key.publicKey}\n`);
  const said = r.stdout.trim();
  if (r.code !== 0 || (said !== 'added' && said !== 'present')) {
    throw new PasstoreError('io', `${conn.target.name}: installing the deploy key failed: ${r.stderr.trim().split('\n')[0] || `status ${r.code}`}`);
  }
  return said;
}

async function removeLines(conn: SshConnection, keys: SshKeyRow[]): Promise<void> {
  const r = await conn.exec(['sh', '-c', REMOVE_KEYS, 'sh', ...keys.map((k) => blobOf(k.publicKey))]);
  if (r.code !== 0) throw new PasstoreError('io', `${conn.target.name}: removing the old deploy key failed: ${r.stderr.trim().split('\n')[0] || `status ${r.code}`}`);
}

/** Installs the current key on one host over its usual login (key, else password). */
export async function installKey(deps: KeyDeps, host: HostRow, key: SshKeyRow, signal?: AbortSignal): Promise<string> {
  try {
    // `signal` gives up only while SSH connects; once connected the line is added.
    const said = await deps.remote.asRoot(host, (conn) => appendLine(conn, key), { signal });
    await deps.audit({ action: 'sshkey-install', target: host.fqdn, outcome: 'ok', detail: `${key.fingerprint} ${said}` });
    return said === 'added' ? `deploy key ${key.fingerprint} installed` : `deploy key ${key.fingerprint} was already installed`;
  } catch (e) {
    await deps.audit({ action: 'sshkey-install', target: host.fqdn, outcome: 'failed', detail: e instanceof PasstoreError ? e.message.slice(0, 200) : 'error' }).catch(() => undefined);
    throw e;
  }
}

/** Whether a login with only `keys` works on the host (no password is sent). */
async function tryKeys<T>(deps: KeyDeps, host: HostRow, keys: Buffer[], fn: (conn: SshConnection) => Promise<T>, signal?: AbortSignal): Promise<{ ok: true; value: T } | { ok: false }> {
  try {
    return { ok: true, value: await deps.remote.asRoot(host, fn, { keys, password: false, signal }) };
  } catch (e) {
    if (e instanceof PasstoreError && e.code === 'auth') return { ok: false };
    throw e;
  }
}

/**
 * One host's rotation: the new line added over an old key, a login with the new key proven,
 * old lines removed. `signal` gives up the first two connections while they are being made
 * (nothing has changed on the host yet); the removal of the old lines, once the new one is
 * there, runs to its end.
 */
async function rotateHost(deps: KeyDeps, host: HostRow, fresh: { row: SshKeyRow; pem: Buffer }, old: { rows: SshKeyRow[]; pems: Buffer[] }, signal?: AbortSignal): Promise<string> {
  // A rotation cut short may have installed the new key already: then only clean up.
  const installed = (await tryKeys(deps, host, [fresh.pem], async () => true, signal)).ok;
  if (!installed) {
    const added = await tryKeys(deps, host, old.pems, (conn) => appendLine(conn, fresh.row), signal);
    if (!added.ok) throw new PasstoreError('auth', `${host.fqdn}: the current deploy key is refused there; install the new one with sshkey install`);
    step('sshkey-rotate-added');
  }
  const cleaned = await tryKeys(deps, host, [fresh.pem], (conn) => removeLines(conn, old.rows));
  if (!cleaned.ok) throw new PasstoreError('mismatch', `${host.fqdn}: the new deploy key was added but a login with it failed; the old key stays`);
  return `new deploy key ${fresh.row.fingerprint} installed, old one removed`;
}

/**
 * Rotates the deploy key over `hosts`. Returns per-host outcomes; the new key becomes
 * current, and the old ones stay usable (state previous) while any host still needs them.
 */
export async function rotateKeys(deps: KeyDeps, hosts: HostRow[], concurrency: number, progress?: (done: number, total: number) => void, signal?: AbortSignal) {
  const keys = await deps.store.listSshKeys();
  const current = await currentKey(deps);
  const nextRow = keys.find((k) => k.state === 'next') ?? (await createKey(deps, 'next'));
  const oldRows = keys.filter((k) => k.state === 'current' || k.state === 'previous');
  const fresh = { row: nextRow, pem: deps.remote.openDeployKey(nextRow) };
  const old = { rows: oldRows, pems: oldRows.sort((a, b) => (a.id === current.id ? -1 : b.id === current.id ? 1 : b.id - a.id)).map((k) => deps.remote.openDeployKey(k)) };
  try {
    const results = await runPool(hosts, concurrency, (h) => rotateHost(deps, h, fresh, old, signal), progress, signal);
    const missed = results.filter((r) => !r.ok).length;
    await deps.change(async (tx) => {
      await tx.setSshKeyState(nextRow.id, 'current');
      for (const k of oldRows) await tx.setSshKeyState(k.id, missed > 0 ? 'previous' : 'retired');
      await deps.audit({ action: 'sshkey-rotate', target: 'deploy-key', outcome: missed > 0 ? 'failed' : 'ok', detail: `${current.fingerprint} -> ${nextRow.fingerprint}; ${hosts.length - missed} of ${hosts.length} hosts${missed > 0 ? ', old key kept for the others' : ''}` }, tx);
    });
    for (const r of results) {
      await deps.audit({ action: 'sshkey-rotate', target: r.item.fqdn, outcome: r.ok ? 'ok' : 'failed', detail: r.ok ? nextRow.fingerprint : r.error instanceof PasstoreError ? r.error.message.slice(0, 200) : 'error' }).catch(() => undefined);
    }
    return { results, fresh: nextRow, old: current };
  } finally {
    fresh.pem.fill(0);
    for (const p of old.pems) p.fill(0);
  }
}
