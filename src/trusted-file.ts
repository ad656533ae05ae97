/**
 * Files passtore believes (its configuration, which names commands it runs as root, and
 * the password files of its SMTP and IMAP accounts) must be under the control of root or
 * of the user running passtore: the file and every directory above it owned by one of
 * them and writable by neither group nor others. A directory with the sticky bit owned by
 * root (such as /tmp) is allowed above it, as others cannot rename or remove what is in it.
 */
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PasstoreError } from './errors.js';

const mode = (st: Stats) => `0${(st.mode & 0o7777).toString(8).padStart(3, '0')}`;

function problem(st: Stats, isDir: boolean, uid: number): string | undefined {
  if (st.uid !== 0 && st.uid !== uid) return `owned by uid ${st.uid}, neither root nor the user running passtore`;
  if ((st.mode & 0o022) === 0) return undefined;
  if (isDir && (st.mode & 0o1000) !== 0 && st.uid === 0) return undefined; // sticky, root's (/tmp)
  const who = [(st.mode & 0o020) !== 0 ? 'group' : '', (st.mode & 0o002) !== 0 ? 'others' : ''].filter(Boolean).join(' and ');
  return `writable by ${who}`;
}

/**
 * Refuses `file` unless it and every directory above it (along the path as given and the
 * path its links resolve to) are owned by root or this user and not writable by group or
 * others. `what` names the file in the one-line error, which also gives its mode.
 * @throws PasstoreError('config')
 */
export function checkTrustedFile(file: string, what: string): void {
  const uid = process.getuid?.();
  if (uid === undefined) return; // not a POSIX system: no owners to check
  const given = resolve(file);
  let real: string;
  try {
    real = realpathSync(given);
  } catch (e) {
    throw new PasstoreError('config', `${what} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  const fileStat = statSync(real);
  const bad = problem(fileStat, fileStat.isDirectory(), uid);
  if (bad) throw new PasstoreError('config', `${what} ${file} (mode ${mode(fileStat)}) is ${bad}; refused, nothing was run`);
  for (const start of new Set([given, real])) {
    for (let dir = dirname(start); ; dir = dirname(dir)) {
      const st = lstatSync(dir);
      // A link among the directories: its target's chain is checked along `real`.
      if (!st.isSymbolicLink()) {
        const why = problem(st, true, uid);
        if (why) throw new PasstoreError('config', `${what} ${file}: the directory ${dir} (mode ${mode(st)}) is ${why}; refused, nothing was run`);
      }
      if (dir === dirname(dir)) break;
    }
  }
}
