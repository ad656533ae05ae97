/**
 * SQLite back end (the embedded default) through better-sqlite3. The file is created
 * with mode 0600 before SQLite opens it. better-sqlite3 is synchronous, so work is queued:
 * a transaction owns the connection until it commits or rolls back, and nothing from
 * elsewhere in the process interleaves with it.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, fchmodSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { PasstoreError } from '../errors.js';
import { splitStatements, type Row, type RunResult, type SqlDriver, type SqlValue } from './driver.js';

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
      closeSync(openSync(path, 'wx', 0o600));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PasstoreError('storage', `cannot create the vault file ${path} (${(e as NodeJS.ErrnoException).code})`);
      }
    }
    try {
      // Checked and set on one descriptor: never a chmod by path that a swap could redirect.
      const fd = openSync(path, 'r');
      try {
        if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600);
      } finally {
        closeSync(fd);
      }
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      return new SqliteDriver(db);
    } catch (e) {
      if (e instanceof PasstoreError) throw e;
      throw new PasstoreError('storage', `cannot open the vault file ${path}: ${(e as Error).message}`);
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
