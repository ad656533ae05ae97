/**
 * Reading one file an operator names (getcrt FILE, getkey HOST FILE) without letting it
 * freeze the shell: the file is opened non-blocking (a FIFO opens at once instead of
 * waiting for a writer), checked on the open descriptor to be a regular file (a FIFO,
 * socket or device is refused, as importcert refuses them), and read asynchronously in
 * chunks, so the event loop, and the shell's Ctrl-C, stay live and `signal` can cancel.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { PasstoreError } from '../errors.js';

const MAX = 1024 * 1024;

/**
 * The bytes of a regular file of at most 1 MiB (secret for a key file: the caller wipes them).
 * @throws PasstoreError('io') naming what is wrong: not a regular file, too large, unreadable, cancelled
 */
export async function readInputFile(file: string, signal?: AbortSignal, limit = MAX): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new PasstoreError('io', `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new PasstoreError('io', `${file} is a directory (importcert reads a directory)`);
    if (!st.isFile()) throw new PasstoreError('io', `${file} is not a regular file (a FIFO, socket or device is refused)`);
    if (st.size > limit) throw new PasstoreError('io', `${file} is larger than ${limit} bytes`);
    const out = Buffer.alloc(st.size);
    let at = 0;
    try {
      while (at < out.length) {
        if (signal?.aborted) throw new PasstoreError('cancelled', `reading ${file} cancelled`);
        const { bytesRead } = await handle.read(out, at, Math.min(64 * 1024, out.length - at), at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      if (signal?.aborted) throw new PasstoreError('cancelled', `reading ${file} cancelled`);
    } catch (e) {
      // What was read of a key file is wiped, not left to the collector.
      out.fill(0);
      throw e;
    }
    return at === out.length ? out : out.subarray(0, at);
  } catch (e) {
    if (e instanceof PasstoreError) throw e;
    throw new PasstoreError('io', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'read error'})`);
  } finally {
    await handle.close();
  }
}
