/**
 * Versioned migrations: `sql/<dialect>/NNN-name.sql`, applied in order at start, each
 * recorded in `schema_migrations`. A vault written by a newer passtore is refused rather
 * than misread.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { PasstoreError } from '../errors.js';
import type { Dialect, SqlDriver } from './driver.js';

/** The folder holding the migrations (the package's `sql/`). */
export const SQL_DIR = fileURLToPath(new URL('../../../sql/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations shipped for a dialect, in order. */
export function migrationsFor(dialect: Dialect): Migration[] {
  const dir = join(SQL_DIR, dialect);
  return readdirSync(dir)
    .filter((f) => /^\d{3}-[a-z0-9-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(join(dir, f), 'utf8') }));
}

const CREATE = {
  sqlite: 'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  mysql: 'CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(128) NOT NULL, applied_at VARCHAR(32) NOT NULL) ENGINE = InnoDB',
};

/**
 * Brings the schema up to date; returns the version it is at. `upTo` stops at an older
 * version (the tests make a vault as an older passtore left it, then upgrade it).
 */
export async function migrate(driver: SqlDriver, upTo?: number): Promise<number> {
  await driver.run(CREATE[driver.dialect]);
  const all = migrationsFor(driver.dialect).filter((m) => upTo === undefined || m.version <= upTo);
  const latest = all.at(-1)?.version ?? 0;
  if (driver.dialect === 'mysql') {
    // Two programs starting at once must not both migrate.
    await driver.all("SELECT GET_LOCK('passtore_migrate', 30) AS got");
  }
  try {
    const rows = await driver.all<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    const current = Number(rows[0]?.v ?? 0);
    if (current > latest) {
      throw new PasstoreError('storage', `the vault's schema is version ${current}, newer than this passtore knows (${latest}); upgrade passtore`);
    }
    for (const m of all.filter((x) => x.version > current)) {
      // SQLite runs each migration in one transaction; MySQL DDL commits implicitly,
      // so its migrations are written to be re-runnable up to their record.
      await driver.transaction(async (tx) => {
        await tx.script(m.sql);
        await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
      });
    }
    return latest;
  } finally {
    if (driver.dialect === 'mysql') await driver.all("SELECT RELEASE_LOCK('passtore_migrate') AS released");
  }
}
