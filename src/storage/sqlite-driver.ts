/**
 * SQLite back end (the embedded default) through better-sqlite3. The file is created
 * with mode 0600 before SQLite opens it. better-sqlite3 is synchronous, so work is queued:
 * a transaction owns the connection until it commits or rolls back, and nothing from
 * elsewhere in the process interleaves with it.
 */
import Database from 'better-sqlite3';
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { PasstoreError } from '../errors.js';
import { openPrivate } from '../private-file.js';
import { splitStatements, type Row, type RunResult, type SqlDriver, type SqlValue } from './driver.js';

/**
 * After SQLite opened `path`: each descriptor it opened on that path must be the file that
 * was checked (same device and inode), or the file was swapped in between.
 */
function checkSameFile(path: string, checked: Stats, before: Set<string>): void {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    real = path;
  }
  for (const fd of readdirSync('/proc/self/fd')) {
    if (before.has(fd)) continue;
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== real) continue;
      const st = statSync(`/proc/self/fd/${fd}`);
      if (st.dev !== checked.dev || st.ino !== checked.ino) {
        throw new PasstoreError('storage', `vault file ${path} was replaced while it was opened; refusing it`);
      }
    } catch (e) {
      if (e instanceof PasstoreError) throw e;
    }
  }
}

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  #db: Database.Database;
  #queue: Promise<unknown> = Promise.resolve();
  /** Prepared statements by SQL text: preparing costs more than running. */
  #statements = new Map<string, Database.Statement>();

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Opens (creating with mode 0600 if need be) the vault file at `path`. */
  static open(path: string, options: { create?: boolean } = {}): SqliteDriver {
    if (options.create === false && !existsSync(path)) throw new PasstoreError('locked', `no vault in sqlite:${path} (the file does not exist)`);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PasstoreError('storage', `cannot create the vault file ${path} (${(e as NodeJS.ErrnoException).code})`);
      }
    }
    // The file is checked on a descriptor opened without following a link, and SQLite's
    // own descriptor is then compared with it (checkSameFile): a link planted or a file
    // swapped in at the vault's path is refused.
    const checked = openPrivate(path, { what: 'vault file', code: 'storage', chmod: '600' });
    try {
      const before = new Set(readdirSync('/proc/self/fd'));
      const db = new Database(path);
      try {
        checkSameFile(path, checked.stat, before);
      } catch (e) {
        db.close();
        throw e;
      }
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      return new SqliteDriver(db);
    } catch (e) {
      if (e instanceof PasstoreError) throw e;
      throw new PasstoreError('storage', `cannot open the vault file ${path}: ${(e as Error).message}`);
    } finally {
      closeSync(checked.fd);
    }
  }

  #enqueue<T>(work: () => Promise<T> | T): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  all<T extends Row = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.#enqueue(() => this.#all<T>(sql, params));
  }

  run(sql: string, params: SqlValue[] = []): Promise<RunResult> {
    return this.#enqueue(() => this.#run(sql, params));
  }

  #prepare(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      if (this.#statements.size > 500) this.#statements.clear();
      this.#statements.set(sql, st);
    }
    return st;
  }

  #all<T>(sql: string, params: SqlValue[]): T[] {
    return this.#prepare(sql).all(...params) as T[];
  }

  #run(sql: string, params: SqlValue[]): RunResult {
    const r = this.#prepare(sql).run(...params);
    return { changes: r.changes, lastId: Number(r.lastInsertRowid) };
  }

  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    return this.#enqueue(async () => {
      this.#db.exec('BEGIN IMMEDIATE');
      const tx: SqlDriver = {
        dialect: 'sqlite',
        all: async <R extends Row>(sql: string, params: SqlValue[] = []) => this.#all<R>(sql, params),
        run: async (sql: string, params: SqlValue[] = []) => this.#run(sql, params),
        transaction: (inner) => inner(tx),
        script: async (sql: string) => {
          for (const s of splitStatements(sql)) this.#db.exec(s);
          this.#statements.clear(); // the schema changed
        },
        close: async () => {},
      };
      try {
        const result = await fn(tx);
        this.#db.exec('COMMIT');
        return result;
      } catch (e) {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  script(sql: string): Promise<void> {
    return this.#enqueue(() => {
      this.#db.exec(sql);
      this.#statements.clear();
    });
  }

  async close(): Promise<void> {
    await this.#enqueue(() => this.#db.close());
  }
}
