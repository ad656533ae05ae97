/**
 * A throwaway MariaDB database for one test, on a MariaDB server of the test process's
 * own: a data directory made with `mariadb-install-db` in a temporary directory, its own
 * unix socket there and its own TCP port on 127.0.0.1, started at the first use in a
 * process and stopped and removed when the process ends (normally, on a failure, or
 * killed: a reaper process, test/support/mariadb-reaper.ts, sees its parent go). No test
 * connects to, stops or changes a server it did not start: the machine's own MariaDB, if
 * one runs, is never touched (every client here runs with `--no-defaults`, so not even
 * its socket from /etc/mysql is read).
 *
 * Databases are created over the private socket as its administrator (the OS user the
 * tests run as, which `mariadb-install-db` makes a socket-authenticated account) and
 * reached by the code under test over TCP as a dedicated test user with a password file,
 * as a site's vault would be. Outside CI, a machine without MariaDB installed skips the
 * tests with the reason; under CI=true it fails.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const TEST_USER = 'passtore_test';
const TEST_PASSWORD = 'passtore-test-only';
/** Server options besides the paths: those of Debian's my.cnf that matter, small memory. */
const SERVER_OPTIONS = ['--skip-name-resolve', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci', '--innodb-buffer-pool-size=32M', '--innodb-log-file-size=16M'];

export interface TestDatabase {
  /** The `db =` value for the config. */
  url: string;
  /** A password file (mode 0600) for `db_password_file`. */
  passwordFile: string;
  name: string;
  /** Runs SQL as the private server's administrator (for dumps and tampering in tests). */
  sql(statement: string): Promise<string>;
  /** `mariadb-dump` of the database, as text. */
  dump(): Promise<string>;
  drop(): Promise<void>;
}

/** The MariaDB server this test process started: one per process, for its lifetime. */
export interface PrivateServer {
  /** Its temporary directory: data, socket, pid file, error log and the server's tmpdir. */
  readonly dir: string;
  readonly socket: string;
  /** Its TCP port on 127.0.0.1. */
  readonly port: number;
  /** The running server's pid, or undefined while it is stopped. */
  pid(): number | undefined;
  /** Stops this private server (over its own socket, never another) and waits until it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same directory, socket and port; waits until it answers. */
  start(): Promise<void>;
  /** Runs the `mariadb` client as the administrator over the socket. */
  client(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
}

/** An executable by name, in PATH or the sbin directories (mariadbd lives in /usr/sbin). */
function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The `--tmpdir` every mariadbd here is given, bootstrap included: DIR/tmp, the server's
 * own. A mariadbd deletes every `#sql*` file in its tmpdir as it starts (what a crashed
 * server left), and its temporary tables live there while in use. With the default
 * tmpdir, /tmp, shared by all, one private server starting deleted the temporary tables
 * of another one's `mariadb-install-db` (`CREATE TEMPORARY TABLE tmp_user_sys` in the
 * system tables' script, then "Unknown table 'mysql.tmp_user_sys'" and "Aborting"), and
 * would delete those of the machine's own server, whose tmpdir is /tmp on Debian.
 */
function tmpdirOption(dir: string): string {
  return `--tmpdir=${join(dir, 'tmp')}`;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A TCP port free on 127.0.0.1 at this moment (the private server's, and the test servers' of test/cron). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lastLines(file: string, n: number): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').filter((l) => !/\[(Note|Warning)\]/.test(l)).slice(-n).join(' / ');
  } catch {
    return '';
  }
}

class Server implements PrivateServer {
  readonly socket: string;
  readonly pidFile: string;
  readonly errorLog: string;
  readonly #admin = userInfo().username;
  #pid: number | undefined;

  constructor(
    readonly dir: string,
    public port: number,
    readonly mariadbd: string,
    readonly asMysql: boolean,
  ) {
    this.socket = join(dir, 'sock');
    this.pidFile = join(dir, 'pid');
    this.errorLog = join(dir, 'error.log');
  }

  pid(): number | undefined {
    return this.#pid !== undefined && alive(this.#pid) ? this.#pid : undefined;
  }

  async client(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const { stdout } = await run('mariadb', ['--no-defaults', '--protocol=socket', `--socket=${this.socket}`, `-u${this.#admin}`, '--batch', '--raw', ...args], { maxBuffer: 256 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000 });
    return stdout;
  }

  async dump(name: string): Promise<string> {
    const { stdout } = await run('mariadb-dump', ['--no-defaults', '--protocol=socket', `--socket=${this.socket}`, `-u${this.#admin}`, '--hex-blob=false', name], { maxBuffer: 256 * 1024 * 1024, encoding: 'latin1' });
    return stdout;
  }

  async #answers(): Promise<boolean> {
    try {
      await this.client(['-e', 'SELECT 1'], { timeoutMs: 10_000 });
      return true;
    } catch {
      return false;
    }
  }

  async start(): Promise<void> {
    if (this.pid() !== undefined && (await this.#answers())) return;
    const child = spawn(
      this.mariadbd,
      ['--no-defaults', ...(this.asMysql ? ['--user=mysql'] : []), `--datadir=${join(this.dir, 'data')}`, `--socket=${this.socket}`, `--port=${this.port}`, '--bind-address=127.0.0.1', `--pid-file=${this.pidFile}`, `--log-error=${this.errorLog}`, tmpdirOption(this.dir), ...SERVER_OPTIONS],
      // Its own process group: a Ctrl-C at the terminal reaches the tests, and the reaper
      // stops the server, rather than the signal killing it under a test.
      { detached: true, stdio: 'ignore' },
    );
    child.unref();
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    this.#pid = child.pid;
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      if (exited !== undefined) throw new Error(`mariadbd exited (status ${exited}) at start: ${lastLines(this.errorLog, 2) || 'no error log'}`);
      if (existsSync(this.socket) && (await this.#answers())) return;
      await pause(100);
    }
    throw new Error(`the private MariaDB did not answer within 60 s: ${lastLines(this.errorLog, 2)}`);
  }

  async stop(): Promise<void> {
    const pid = this.pid();
    // Only this server's own socket is named: no other server can be stopped by it.
    const stopOwn = ['--no-defaults', '--protocol=socket', `--socket=${this.socket}`, `-u${this.#admin}`, 'shutdown'];
    await run('mariadb-admin', stopOwn, { timeout: 30_000 });
    const until = Date.now() + 30_000;
    while (pid !== undefined && alive(pid) && Date.now() < until) await pause(50);
    this.#pid = undefined;
  }
}

let server: Promise<Server> | undefined;

/** The reaper: stops the server and removes its directory once this process has ended. */
function startReaper(dir: string): void {
  const here = dirname(fileURLToPath(import.meta.url));
  const reaper = spawn(process.execPath, [join(here, 'mariadb-reaper.js'), dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  reaper.unref();
  // The pipe stays open for this process's life; the reaper acts when it closes.
  (reaper.stdin as unknown as { unref(): void }).unref();
}

/**
 * A fresh data directory in `data`. `mariadb-install-db` takes seconds on a busy machine,
 * so the first test process of a run publishes a pristine copy (never served from) as a
 * template named after the test runner (this process's parent), and the others copy it
 * (`cp -a`, owners kept) in a fraction of that. The template is removed by a reaper once
 * the runner has ended; it is keyed by the mariadbd binary too, so an upgrade never
 * reuses an old one.
 */
async function makeDataDir(dir: string, installDb: string, mariadbd: string, asMysql: boolean, base: string): Promise<void> {
  const data = join(dir, 'data');
  const st = statSync(mariadbd);
  const key = createHash('sha256').update(`${st.size} ${st.mtimeMs} ${SERVER_OPTIONS.join(' ')} ${process.getuid?.()}`).digest('hex').slice(0, 12);
  const template = join(base, `passtore-mariadb-template-${process.ppid}-${key}`);
  if (existsSync(join(template, 'data', 'mysql'))) {
    try {
      await run('cp', ['-a', join(template, 'data'), data], { timeout: 120_000 });
      return;
    } catch {
      rmSync(data, { recursive: true, force: true }); // removed meanwhile: make one below
    }
  }
  try {
    await run(installDb, ['--no-defaults', ...(asMysql ? ['--user=mysql'] : []), '--basedir=/usr', `--datadir=${data}`, tmpdirOption(dir), '--auth-root-authentication-method=socket', '--skip-test-db', ...SERVER_OPTIONS], { timeout: 120_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    // Its last line is a bare "Aborting": the error lines before it say why (the server's
    // "[ERROR]" lines, and a failed statement of the bootstrap script as "ERROR: 1051 …").
    const lines = (err.stderr ?? err.message).trim().split('\n');
    const errors = lines.filter((l) => l.includes('[ERROR]') || /^ERROR\b/.test(l));
    throw new Error(`mariadb-install-db failed: ${(errors.length ? errors : lines.slice(-1)).join(' | ')}`);
  }
  // Publish the template: staged, then renamed into place (another process may win).
  const staging = mkdtempSync(join(base, 'passtore-mariadb-staging-'));
  try {
    await run('cp', ['-a', data, join(staging, 'data')], { timeout: 120_000 });
    renameSync(staging, template);
    const here = dirname(fileURLToPath(import.meta.url));
    spawn(process.execPath, [join(here, 'mariadb-reaper.js'), template, String(process.ppid)], { detached: true, stdio: 'ignore' }).unref();
  } catch {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function startServer(): Promise<Server> {
  const mariadbd = findProgram('mariadbd');
  const installDb = findProgram('mariadb-install-db');
  if (!mariadbd || !installDb || !findProgram('mariadb') || !findProgram('mariadb-admin')) {
    throw new Error('MariaDB is not installed (mariadbd, mariadb-install-db, mariadb, mariadb-admin; Debian: mariadb-server and mariadb-client)');
  }
  const asMysql = process.getuid?.() === 0;
  let ids: [number, number] | undefined;
  if (asMysql) {
    try {
      ids = [Number((await run('id', ['-u', 'mysql'])).stdout.trim()), Number((await run('id', ['-g', 'mysql'])).stdout.trim())];
    } catch {
      throw new Error('running as root, and there is no "mysql" user for mariadbd to run as');
    }
  }
  // A unix socket path holds at most 107 bytes: a long TMPDIR falls back to /tmp.
  const base = join(tmpdir(), 'x').length > 60 ? '/tmp' : tmpdir();
  const dir = mkdtempSync(join(base, 'passtore-mariadb-'));
  startReaper(dir);
  mkdirSync(join(dir, 'tmp'), { mode: 0o700 });
  if (ids) {
    chownSync(dir, ids[0], ids[1]);
    chownSync(join(dir, 'tmp'), ids[0], ids[1]);
  }
  await makeDataDir(dir, installDb, mariadbd, asMysql, base);
  // Another process may take the port between the look and the bind: try a few.
  let last: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    const s = new Server(dir, await freePort(), mariadbd, asMysql);
    try {
      await s.start();
      // Stopped at exit: the reaper then waits for it to be gone and removes the directory.
      process.once('exit', () => {
        const pid = s.pid();
        if (pid !== undefined) process.kill(pid, 'SIGTERM');
      });
      await s.client(['-e', `CREATE USER '${TEST_USER}'@'127.0.0.1' IDENTIFIED BY '${TEST_PASSWORD}'`]);
      return s;
    } catch (e) {
      last = e;
      const pid = s.pid();
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    }
  }
  throw last;
}

/**
 * This process's private MariaDB server, started at the first call (later calls get the
 * same one). Rejects with the reason when it cannot be started.
 */
export function privateMariadb(): Promise<PrivateServer> {
  server ??= startServer();
  return server;
}

/** Why MariaDB cannot be used here, or undefined when it can (starts the private server). */
export async function mariadbUnavailable(): Promise<string | undefined> {
  try {
    await privateMariadb();
    return undefined;
  } catch (e) {
    return `cannot start a private MariaDB server: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** The skip option for node:test: a reason outside CI, a failure under CI. */
export async function mariadbSkip(): Promise<string | false> {
  const why = await mariadbUnavailable();
  if (!why) return false;
  if (process.env.CI === 'true') throw new Error(`CI requires MariaDB: ${why}`);
  console.log(`# skipping MariaDB tests: ${why}`);
  return why;
}

/** Creates a fresh database on the private server and the test user's grant on it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const s = await privateMariadb();
  const name = `passtore_t_${randomBytes(5).toString('hex')}`;
  await s.client(['-e', [`CREATE DATABASE \`${name}\``, `GRANT ALL PRIVILEGES ON \`${name}\`.* TO '${TEST_USER}'@'127.0.0.1'`].join(';')]);
  const dir = mkdtempSync(join(tmpdir(), 'passtore-db-'));
  const passwordFile = join(dir, 'db-password');
  writeFileSync(passwordFile, `${TEST_PASSWORD}\n`, { mode: 0o600 });
  return {
    url: `mysql://${TEST_USER}@127.0.0.1:${s.port}/${name}`,
    passwordFile,
    name,
    sql: (statement) => s.client(['-D', name, '-e', statement]),
    dump: () => (s as Server).dump(name),
    drop: async () => {
      await s.client(['-e', `DROP DATABASE IF EXISTS \`${name}\``]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
