/**
 * The `dir` fetcher: a drop folder (`[ca] dir`). Every regular file in it is a delivery;
 * afterwards a copy of what was read is kept in passtore's own data directory
 * (`ca-drop/done/` when stored or already known, `ca-drop/refused/`), and the file is
 * removed from the drop folder, so it is not read twice.
 *
 * Whoever can write the drop folder is an outsider: nothing in it is followed. Entries are
 * looked at with lstat, opened with O_NOFOLLOW and checked on the descriptor; a link, a
 * directory, a device or a FIFO is skipped and reported. Nothing is ever created, renamed
 * or written inside the drop folder: the copies go to a directory passtore owns (mode 0700).
 */
import { constants, fstatSync, lstatSync, mkdirSync, openSync, closeSync, readSync, readdirSync, unlinkSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { dataDir } from '../config.js';
import { PasstoreError } from '../errors.js';
import { printable } from '../names.js';
import { writeNewFile } from '../safe-file.js';
import type { Delivery, FetchContext, Fetcher } from './fetcher.js';

const MAX_FILE = 1024 * 1024;

/** Where passtore keeps what it took from the drop folder: `DATA/ca-drop/{done,refused}`. */
export function dropArchive(outcome: 'done' | 'refused', base = dataDir()): string {
  return join(base, 'ca-drop', outcome);
}

/** Makes (or checks) a directory of passtore's own: a real directory, ours, mode 0700. */
function ownDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new PasstoreError('policy', `${dir} must be a directory owned by passtore's user with mode 0700 (it is ${st.isDirectory() ? (st.mode & 0o777).toString(8) : 'not a directory'}); nothing was moved`);
  }
}

/** Reads a drop-folder file without following a link: regular files only, at most MAX_FILE. */
function readDropFile(path: string, seen: Stats): Buffer | string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    return `cannot open it (${(e as NodeJS.ErrnoException).code})`;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.ino !== seen.ino || st.dev !== seen.dev) return 'not a regular file (it changed while read); skipped';
    if (st.size > MAX_FILE) return `larger than ${MAX_FILE} bytes; skipped`;
    const buf = Buffer.alloc(MAX_FILE + 1);
    let len = 0;
    for (let n = 1; n > 0 && len <= MAX_FILE; len += n) n = readSync(fd, buf, len, buf.length - len, null);
    if (len > MAX_FILE) return `larger than ${MAX_FILE} bytes; skipped`;
    return buf.subarray(0, len);
  } finally {
    closeSync(fd);
  }
}

export class DirFetcher implements Fetcher {
  readonly name = 'dir';
  constructor(
    private readonly dir: string,
    private readonly archiveBase = dataDir(),
  ) {}

  async collect(_pending: unknown, ctx: FetchContext): Promise<Delivery[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir).sort();
    } catch (e) {
      throw new PasstoreError('io', `[ca] dir ${this.dir}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
    }
    const out: Delivery[] = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = join(this.dir, name);
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch {
        continue; // gone since the listing
      }
      // done/ and refused/ directories an earlier version made inside the drop folder.
      if (st.isDirectory() && (name === 'done' || name === 'refused')) continue;
      if (!st.isFile()) {
        ctx.problem(`${path}: not a regular file (${st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'a device, FIFO or socket'}); skipped, nothing followed`);
        continue;
      }
      const data = readDropFile(path, st);
      if (typeof data === 'string') {
        ctx.problem(`${path}: ${data}`);
        continue;
      }
      out.push({
        source: path,
        data,
        settle: async (outcome) => {
          const to = dropArchive(outcome === 'refused' ? 'refused' : 'done', this.archiveBase);
          ownDir(to);
          // The copy is what was read; the name in the drop folder is then removed
          // (unlink removes a name, never what a link points at).
          let target = join(to, name);
          try {
            writeNewFile(target, data, 0o600);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new PasstoreError('io', `cannot keep a copy of ${printable(name)} in ${to} (${(e as NodeJS.ErrnoException).code})`);
            target = join(to, `${name}.${randomBytes(4).toString('hex')}`);
            writeNewFile(target, data, 0o600);
          }
          try {
            unlinkSync(path);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new PasstoreError('io', `cannot remove ${path} from the drop folder (${(e as NodeJS.ErrnoException).code})`);
          }
        },
      });
    }
    return out;
  }
}
