/**
 * Opens the store the configuration names, and brings its schema up to date.
 */
import { migrate } from './migrate.js';
import { SqlStore } from './sql-store.js';
import type { Store } from './store.js';

/** Opens `sqlite:PATH` or `mysql://user@host[:port]/name` and migrates it; `create: false` refuses a missing SQLite file. */
export async function openStore(db: string, dbPasswordFile?: string, options: { create?: boolean } = {}): Promise<Store> {
  if (db.startsWith('sqlite:')) {
    // better-sqlite3 is loaded only for an SQLite vault (about 10 ms a start on MariaDB).
    const { SqliteDriver } = await import('./sqlite-driver.js');
    const driver = SqliteDriver.open(db.slice('sqlite:'.length), options);
    await migrate(driver);
    return new SqlStore(driver, db);
  }
  // mysql2 is loaded only for a MySQL vault: it is not needed to start on SQLite.
  const { MysqlDriver, readDbPassword } = await import('./mysql-driver.js');
  const driver = await MysqlDriver.open(db, readDbPassword(dbPasswordFile));
  try {
    await migrate(driver);
  } catch (e) {
    await driver.close();
    throw e;
  }
  return new SqlStore(driver, db.replace(/\?.*$/, ''));
}
