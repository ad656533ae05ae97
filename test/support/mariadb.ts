/**
 * A throwaway MariaDB database for one test: created over the server's unix socket as
 * root (as this machine kind allows), reached by the tests over TCP as a dedicated test
 * user with a password file, dropped afterwards. Outside CI, a missing server skips the
 * test with the reason; under CI=true it fails.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SOCKET = process.env.PASSTORE_TEST_MYSQL_SOCKET ?? '/run/mysqld/mysqld.sock';
const TEST_USER = 'passtore_test';
const TEST_PASSWORD = 'passtore-test-only';

export interface TestDatabase {
  /** The `db =` value for the config. */
  url: string;
  /** A password file (mode 0600) for `db_password_file`. */
  passwordFile: string;
  name: string;
  /** Runs SQL as root (for dumps and tampering in tests). */
  sql(statement: string): Promise<string>;
  /** `mariadb-dump` of the database, as text. */
  dump(): Promise<string>;
  drop(): Promise<void>;
}

async function asRoot(args: string[]): Promise<string> {
  const { stdout } = await run('mariadb', ['--protocol=socket', `--socket=${SOCKET}`, '-uroot', '--batch', '--raw', ...args], { maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

/** Why MariaDB cannot be used here, or undefined when it can. */
export async function mariadbUnavailable(): Promise<string | undefined> {
  if (!existsSync(SOCKET)) return `no MariaDB socket at ${SOCKET} (start it: see NOTES.md)`;
  try {
    await asRoot(['-e', 'SELECT 1']);
    return undefined;
  } catch (e) {
    return `MariaDB does not answer as root on ${SOCKET}: ${(e as Error).message.split('\n')[0]}`;
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

/** Creates a fresh database and the test user's grant on it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `passtore_t_${randomBytes(5).toString('hex')}`;
  await asRoot([
    '-e',
    [
      `CREATE USER IF NOT EXISTS '${TEST_USER}'@'127.0.0.1' IDENTIFIED BY '${TEST_PASSWORD}'`,
      `CREATE DATABASE \`${name}\``,
      `GRANT ALL PRIVILEGES ON \`${name}\`.* TO '${TEST_USER}'@'127.0.0.1'`,
    ].join(';'),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'passtore-db-'));
  const passwordFile = join(dir, 'db-password');
  writeFileSync(passwordFile, `${TEST_PASSWORD}\n`, { mode: 0o600 });
  return {
    url: `mysql://${TEST_USER}@127.0.0.1:3306/${name}`,
    passwordFile,
    name,
    sql: (statement) => asRoot(['-D', name, '-e', statement]),
    dump: async () => {
      const { stdout } = await run('mariadb-dump', ['--protocol=socket', `--socket=${SOCKET}`, '-uroot', '--hex-blob=false', name], { maxBuffer: 256 * 1024 * 1024, encoding: 'latin1' });
      return stdout;
    },
    drop: async () => {
      await asRoot(['-e', `DROP DATABASE IF EXISTS \`${name}\``]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
