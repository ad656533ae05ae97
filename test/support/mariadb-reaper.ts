/**
 * The private MariaDB server's reaper (test/support/mariadb.ts): started with the server's
 * directory, it waits until its standard input closes, which happens when the test
 * process that started it ends for whatever reason (a normal exit, a failed test, a
 * signal, SIGKILL). It then stops the mariadbd serving that directory (SIGTERM, after
 * 60 s SIGKILL), waits until it is gone, and removes the directory. It finds the server
 * by its command line (`--datadir=DIR/data`), so it never stops another server.
 *
 * With a pid as well, DIR is a template data directory (no server runs on it): it is
 * removed once that process (the test runner) has ended.
 *
 * Usage: node mariadb-reaper.js DIR [PID]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir || !/passtore-mariadb-/.test(dir)) process.exit(2);
const datadir = `--datadir=${join(dir, 'data')}`;

/** The pids of the mariadbd processes serving this directory. */
function servers(): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.includes(datadir) && /mariadbd$/.test(argv[0] ?? '')) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // gone meanwhile
    }
  }
}

async function reap(): Promise<void> {
  signal(servers(), 'SIGTERM');
  const until = Date.now() + 60_000;
  while (servers().length > 0) {
    if (Date.now() > until) signal(servers(), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(dir!, { recursive: true, force: true });
}

const watched = Number(process.argv[3] ?? 0);
if (watched > 0) {
  if (!/passtore-mariadb-template-/.test(dir)) process.exit(2);
  const gone = (): boolean => {
    try {
      process.kill(watched, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code !== 'EPERM';
    }
  };
  const timer = setInterval(() => {
    if (!gone()) return;
    clearInterval(timer);
    rmSync(dir, { recursive: true, force: true });
  }, 1000);
} else {
  process.stdin.on('data', () => undefined);
  process.stdin.on('close', () => void reap().then(() => process.exit(0)));
}
