/**
 * Remote operations' common path: find the target's address, open the network guard to
 * that one address and port, connect over SSH with the pinned host key and the stored root
 * password (or the credentials given), run the work, and close everything, also on failure.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PasstoreError } from '../errors.js';
import type { Context } from '../command.js';
import { DEFAULT_SERVICE, formatSpec } from '../names.js';
import type { Secret } from '../secret.js';
import type { HostRow } from '../storage/store.js';
import { SshConnection, type NewKeyHandler, type SshTarget } from '../ssh/ssh.js';

/** What remote operations use of the session's context. */
export type RemoteContext = Pick<Context, 'store' | 'vault' | 'guard' | 'prompt'>;

/** Where a stored host is reached. */
export async function addressOf(name: string, address: string | null): Promise<string> {
  if (address) return address;
  if (isIP(name)) return name;
  try {
    return (await lookup(name)).address;
  } catch {
    throw new PasstoreError('io', `${name}: no address stored and the name does not resolve; give one with host address ${name} IP`);
  }
}

export class Remote {
  constructor(private readonly deps: RemoteContext) {}

  /** The SSH target of a stored host (its pinned key required). */
  async targetOf(host: HostRow): Promise<SshTarget> {
    return { name: host.fqdn, address: await addressOf(host.fqdn, host.address), port: host.port, pinnedKey: host.sshHostKey ?? undefined };
  }

  /** The stored root@host:ssh password (the caller wipes it). */
  async rootPassword(host: HostRow, user = 'root'): Promise<Secret> {
    const entry = await this.deps.store.getEntry(host.fqdn, user, DEFAULT_SERVICE);
    if (!entry || entry.state !== 'set') throw new PasstoreError('not-found', `no ${formatSpec({ fqdn: host.fqdn, user, service: DEFAULT_SERVICE })} password in the vault to log in with`);
    // Another session may have rekeyed since this one last looked (a long run, a prompt).
    await this.deps.vault.refresh();
    return this.deps.vault.openPassword(entry);
  }

  /** Runs `fn` on a connection to a stored host as root (stored password), guard open. */
  async asRoot<T>(host: HostRow, fn: (conn: SshConnection) => Promise<T>): Promise<T> {
    const target = await this.targetOf(host);
    if (!target.pinnedKey) throw new PasstoreError('policy', `${host.fqdn} has no pinned SSH host key; run host trust ${host.fqdn} first`);
    const password = await this.rootPassword(host);
    try {
      return await this.with(target, { username: 'root', password }, fn);
    } finally {
      password.wipe();
    }
  }

  /** Runs `fn` on a connection to any target with the given credentials, guard open. */
  async with<T>(target: SshTarget, auth: { username: string; password?: Secret }, fn: (conn: SshConnection) => Promise<T>, onNewKey?: NewKeyHandler): Promise<T> {
    return this.deps.guard.withAccess({ address: target.address, port: target.port }, async () => {
      const conn = await SshConnection.connect(target, auth, { onNewKey });
      try {
        return await fn(conn);
      } finally {
        await conn.close();
      }
    });
  }

  /** Logs in once to check a password works, and closes (guard open for the time of it). */
  async checkLogin(target: SshTarget, username: string, password: Secret): Promise<boolean> {
    try {
      await this.with(target, { username, password }, async () => undefined);
      return true;
    } catch (e) {
      if (e instanceof PasstoreError && e.code === 'auth') return false;
      throw e;
    }
  }

  /** A target that may not be a stored host (a workstation): its key is confirmed if not pinned. */
  async workstation(name: string): Promise<{ target: SshTarget; onNewKey: NewKeyHandler }> {
    const host = isIP(name) ? undefined : await this.deps.store.getHost(name);
    const target: SshTarget = host ? await this.targetOf(host) : { name, address: await addressOf(name, null), port: 22 };
    const onNewKey: NewKeyHandler = (key) => this.deps.prompt.confirm(`${name} presents the ${key.type} host key ${key.fingerprint}, not pinned in the vault. Connect?`);
    return { target, onNewKey };
  }
}
