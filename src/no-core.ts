/**
 * No core dump may hold the data key or a plaintext secret. Node has neither setrlimit
 * nor prctl, so before anything secret is in memory both programs:
 *
 * 1. write 0 to /proc/self/coredump_filter: a dump, should one still be made (a
 *    core_pattern that pipes to systemd-coredump ignores the size limit), holds no
 *    memory mapping at all, anonymous or file-backed (core(5));
 * 2. lower their own core size limit, soft and hard, to 0 through prlimit(1)
 *    (util-linux), which calls prlimit(2) on this process: the kernel writes no core file,
 *    and the hard limit 0 cannot be raised again without privilege (getrlimit(2)).
 *
 * Both are then read back from /proc/self; a program that cannot make sure of both
 * refuses to start.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { PasstoreError } from './errors.js';

const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit'];

/** The soft and hard core size limits of this process, from /proc/self/limits. */
export function coreLimits(): { soft: string; hard: string } | undefined {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
  const m = line ? /^Max core file size\s+(\S+)\s+(\S+)/.exec(line) : null;
  return m ? { soft: m[1]!, hard: m[2]! } : undefined;
}

/**
 * Makes this process unable to leave a core dump holding its memory, or throws a
 * PasstoreError saying why it could not.
 */
export function forbidCoreDumps(): void {
  try {
    writeFileSync('/proc/self/coredump_filter', '0');
  } catch (e) {
    throw new PasstoreError('config', `cannot turn core dumps off (/proc/self/coredump_filter: ${(e as NodeJS.ErrnoException).code ?? 'error'}); refusing to start`);
  }
  const filter = readFileSync('/proc/self/coredump_filter', 'utf8').trim();
  if (Number.parseInt(filter, 16) !== 0) throw new PasstoreError('config', `cannot turn core dumps off (coredump_filter stays ${filter}); refusing to start`);
  let limits = coreLimits();
  if (limits?.soft !== '0' || limits.hard !== '0') {
    const prlimit = PRLIMIT.find((p) => existsSync(p));
    if (!prlimit) throw new PasstoreError('config', 'cannot turn core dumps off: prlimit (util-linux) is not installed; refusing to start');
    try {
      execFileSync(prlimit, ['--pid', String(process.pid), '--core=0:0'], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/bin:/bin', LANG: 'C' } });
    } catch (e) {
      const why = String((e as { stderr?: Buffer }).stderr ?? '').trim().split('\n')[0] || (e as Error).message.split('\n')[0];
      throw new PasstoreError('config', `cannot turn core dumps off (prlimit: ${why}); refusing to start`);
    }
    limits = coreLimits();
  }
  if (limits?.soft !== '0' || limits.hard !== '0') {
    throw new PasstoreError('config', `cannot turn core dumps off (core size limit stays ${limits?.soft}/${limits?.hard}); refusing to start`);
  }
}
