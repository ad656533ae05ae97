/**
 * Copying a file to or from `user@host:path` over SFTP, behind the network guard. A vault
 * host with a pinned key and a stored root password is used as root without asking;
 * anything else (a workstation) asks the user's password at a no-echo prompt, and its host
 * key is shown for confirmation unless it is pinned.
 */
import type { Context } from '../command.js';
import { PasstoreError } from '../errors.js';
import type { RemoteFile } from '../names.js';
import type { Sftp, SshConnection } from '../ssh/ssh.js';

async function onRemote<T>(ctx: Context, spec: RemoteFile, fn: (conn: SshConnection) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const host = /^\d/.test(spec.host) ? undefined : await ctx.store.getHost(spec.host);
  const entry = host && spec.user === 'root' && host.sshHostKey ? await ctx.store.getEntry(host.fqdn, 'root', 'ssh') : undefined;
  if (host && entry?.state === 'set') return ctx.remote.asRoot(host, fn, { signal });
  const { target, onNewKey } = await ctx.remote.workstation(spec.host);
  const password = await ctx.prompt.secret(`Password for ${spec.user}@${spec.host}`);
  try {
    return await ctx.remote.with(target, { username: spec.user, password }, fn, onNewKey, signal);
  } finally {
    password.wipe();
  }
}

/**
 * The SFTP session `opening`, or `cancelled()` as soon as `signal` is aborted while the
 * host is still starting it (a host may take long, or never answer): the caller's
 * connection is then closed, and a session that opens after all is ended.
 */
function startedOrCancelled(opening: Promise<Sftp>, signal: AbortSignal | undefined, cancelled: () => PasstoreError): Promise<Sftp> {
  if (!signal) return opening;
  return new Promise<Sftp>((resolve, reject) => {
    const abort = () => {
      opening.then((s) => s.end(), () => undefined);
      reject(cancelled());
    };
    signal.addEventListener('abort', abort, { once: true });
    opening.then(
      (s) => {
        // Aborted before: already rejected, and this session is ended by `abort`.
        signal.removeEventListener('abort', abort);
        resolve(s);
      },
      (e) => {
        signal.removeEventListener('abort', abort);
        reject(e);
      },
    );
  });
}

/** Reads a remote file (at most 1 MiB); `signal` (Ctrl-C) ends the transfer, with PasstoreError('cancelled'). */
export function fetchRemoteFile(ctx: Context, spec: RemoteFile, signal?: AbortSignal): Promise<Buffer> {
  return onRemote(ctx, spec, async (conn) => {
    const cancelled = () => new PasstoreError('cancelled', `fetching ${spec.path} cancelled`);
    if (signal?.aborted) throw cancelled();
    const sftp = await startedOrCancelled(conn.sftp(), signal, cancelled);
    const stop = () => sftp.end();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      return await sftp.read(spec.path);
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      throw e;
    } finally {
      signal?.removeEventListener('abort', stop);
      sftp.end();
    }
  }, signal);
}

/**
 * Writes `data` as `name` into the remote directory `spec.path` (the login directory when
 * empty). `signal` gives up only while SSH connects (PasstoreError 'cancelled'); once
 * connected the file is written whole.
 */
export function putRemoteFile(ctx: Context, spec: RemoteFile, name: string, data: string, mode: number, signal?: AbortSignal): Promise<string> {
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
  }, signal);
}
