/**
 * Copying a file to or from `user@host:path` over SFTP, behind the network guard. A vault
 * host with a pinned key and a stored root password is used as root without asking;
 * anything else (a workstation) asks the user's password at a no-echo prompt, and its host
 * key is shown for confirmation unless it is pinned.
 */
import type { Context } from '../command.js';
import { PasstoreError } from '../errors.js';
import type { RemoteFile } from '../names.js';
import type { SshConnection } from '../ssh/ssh.js';

async function onRemote<T>(ctx: Context, spec: RemoteFile, fn: (conn: SshConnection) => Promise<T>): Promise<T> {
  const host = /^\d/.test(spec.host) ? undefined : await ctx.store.getHost(spec.host);
  const entry = host && spec.user === 'root' && host.sshHostKey ? await ctx.store.getEntry(host.fqdn, 'root', 'ssh') : undefined;
  if (host && entry?.state === 'set') return ctx.remote.asRoot(host, fn);
  const { target, onNewKey } = await ctx.remote.workstation(spec.host);
  const password = await ctx.prompt.secret(`Password for ${spec.user}@${spec.host}`);
  try {
    return await ctx.remote.with(target, { username: spec.user, password }, fn, onNewKey);
  } finally {
    password.wipe();
  }
}

/** Reads a remote file (at most 1 MiB); `signal` (Ctrl-C) ends the transfer, with PasstoreError('cancelled'). */
export function fetchRemoteFile(ctx: Context, spec: RemoteFile, signal?: AbortSignal): Promise<Buffer> {
  return onRemote(ctx, spec, async (conn) => {
    if (signal?.aborted) throw new PasstoreError('cancelled', `fetching ${spec.path} cancelled`);
    const sftp = await conn.sftp();
    const stop = () => sftp.end();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      return await sftp.read(spec.path);
    } catch (e) {
      if (signal?.aborted) throw new PasstoreError('cancelled', `fetching ${spec.path} cancelled`);
      throw e;
    } finally {
      signal?.removeEventListener('abort', stop);
      sftp.end();
    }
  });
}

/** Writes `data` as `name` into the remote directory `spec.path` (the login directory when empty). */
export function putRemoteFile(ctx: Context, spec: RemoteFile, name: string, data: string, mode: number): Promise<string> {
  const dir = spec.path.replace(/\/+$/, '');
  const path = dir ? `${dir}/${name}` : name;
  return onRemote(ctx, spec, async (conn) => {
    const sftp = await conn.sftp();
    try {
      await sftp.remove(path).catch(() => undefined);
      await sftp.writeNew(path, data, mode);
      return `${spec.user}@${spec.host}:${path}`;
    } finally {
      sftp.end();
    }
  });
}
