/**
 * Local files passtore writes or reads on the operator's behalf, in directories others may
 * be able to write. A new file is created with one exclusive, no-follow open at its final
 * mode and its mode is then set on the descriptor (never chmod by path): a link planted
 * at the name is refused, and no swap between write and chmod can change another file's
 * mode. A file passtore reads is opened once and checked on the descriptor: only a regular
 * file, and never more than the limit (a device such as /dev/zero reports a size of 0).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PasstoreError } from './errors.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_NONBLOCK } = constants;

/**
 * Writes a new file at `path` with `mode`: exclusive, no-follow, mode set on the
 * descriptor, synced. Throws the system error (EEXIST when the name is taken, ELOOP or
 * EEXIST for a link) for the caller to phrase.
 */
export function writeNewFile(path: string, data: Buffer | string, mode: number): void {
  const fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  let ok = false;
  try {
    fchmodSync(fd, mode); // the umask may have taken bits the file must have
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    // The name is ours (created exclusively): nothing half-written stays.
    if (!ok) unlinkSync(path);
  }
}

/**
 * Replaces `path` with `data` at `mode`: a new file under a random name in the same
 * directory (exclusive, no-follow), renamed over `path`. rename replaces a link planted at
 * `path` itself, never its target. Errors are one line naming the file.
 */
export function replaceFile(path: string, data: Buffer | string, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeNewFile(tmp, data, mode);
    renameSync(tmp, path);
  } catch (e) {
    throw new PasstoreError('io', `cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Reads a regular file of at most `limit` bytes, checked on the open descriptor: a
 * directory, device, FIFO or socket is refused (opened non-blocking, so a FIFO cannot
 * hang the read), and reading stops at the limit whatever the size says.
 */
export function readRegularFile(path: string, limit: number, options: { noFollow?: boolean } = {}): Buffer {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NONBLOCK | (options.noFollow ? O_NOFOLLOW : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PasstoreError('io', code === 'ELOOP' ? `${path} is a symbolic link; not read` : `cannot read ${path} (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new PasstoreError('io', `${path} is not a regular file; not read`);
    if (st.size > limit) throw new PasstoreError('io', `${path} is larger than ${limit} bytes`);
    const chunks: Buffer[] = [];
    let len = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, limit + 1 - len));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      len += n;
      if (len > limit) throw new PasstoreError('io', `${path} is larger than ${limit} bytes`);
    }
    const buf = Buffer.concat(chunks);
    return buf.subarray(0, len);
  } catch (e) {
    if (e instanceof PasstoreError) throw e;
    throw new PasstoreError('io', `cannot read ${path} (${(e as NodeJS.ErrnoException).code})`);
  } finally {
    closeSync(fd);
  }
}
