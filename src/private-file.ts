/**
 * Opening the files that hold secrets: the key file, the database password file, the
 * EAB key file (and the other `*_password_file`s), and the SQLite vault file.
 *
 * Never follow a link, never trust a file others can write: the last path component is
 * opened with O_NOFOLLOW, and the checks (a regular file, owned by the user running
 * passtore, mode 0600 or 0400) are made on the open descriptor with fstat, which is then
 * the one read. A link planted where the file is expected is refused, and a file swapped
 * in after the check is never the one read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { PasstoreError, type ErrorCode } from './errors.js';

/** What the refusal names and how: `key file /etc/passtore/cron.key`, code, the chmod to suggest. */
export interface PrivateFileKind {
  /** The file's role, as the message names it (`key file`, `db_password_file`). */
  what: string;
  code: ErrorCode;
  /** The mode to suggest (`400`, `600`). */
  chmod: string;
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code ?? 'error';

/** The one-line refusal of a descriptor's file, or undefined when it may be trusted. */
export function privateFileProblem(st: Stats, path: string, kind: PrivateFileKind): string | undefined {
  const uid = process.getuid?.() ?? st.uid;
  if (!st.isFile()) return `${kind.what} ${path} is not a regular file; refusing it`;
  if (st.uid !== uid) return `${kind.what} ${path} is owned by uid ${st.uid}, not by uid ${uid} running passtore; refusing it`;
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) return `${kind.what} ${path} is readable by group or others (mode ${mode.toString(8)}); chmod ${kind.chmod} it`;
  if (mode !== 0o600 && mode !== 0o400) return `${kind.what} ${path} has mode ${mode.toString(8)}, not 600 or 400; chmod ${kind.chmod} it`;
  return undefined;
}

/**
 * Opens `path` without following a link (flags added to O_NOFOLLOW) and checks the
 * descriptor; returns it open, or throws one line naming the file.
 */
export function openPrivate(path: string, kind: PrivateFileKind, flags: number = constants.O_RDONLY): { fd: number; stat: Stats } {
  let fd: number;
  try {
    fd = openSync(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if (errno(e) === 'ELOOP') throw new PasstoreError(kind.code, `${kind.what} ${path} is a symbolic link; refusing it (a secret file is never read through a link)`);
    throw new PasstoreError(kind.code, `${kind.what} ${path}: cannot read it (${errno(e)})`);
  }
  try {
    const stat = fstatSync(fd);
    const problem = privateFileProblem(stat, path, kind);
    if (problem) throw new PasstoreError(kind.code, problem);
    return { fd, stat };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Reads a private file into a Buffer (the caller wipes it), checked as openPrivate does. */
export function readPrivate(path: string, kind: PrivateFileKind, maxBytes = 1024 * 1024): Buffer {
  const { fd, stat } = openPrivate(path, kind);
  try {
    if (stat.size > maxBytes) throw new PasstoreError(kind.code, `${kind.what} ${path} is larger than ${maxBytes} bytes; refusing it`);
    // One buffer, filled in place: no copy of the content is left behind to wipe.
    const buf = Buffer.alloc(stat.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== buf.length) {
      buf.fill(0);
      throw new PasstoreError(kind.code, `${kind.what} ${path} changed while it was read; refusing it`);
    }
    return buf;
  } catch (e) {
    if (e instanceof PasstoreError) throw e;
    throw new PasstoreError(kind.code, `${kind.what} ${path}: cannot read it (${errno(e)})`);
  } finally {
    closeSync(fd);
  }
}
