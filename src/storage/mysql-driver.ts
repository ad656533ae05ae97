/**
 * MySQL / MariaDB back end through mysql2. The URL is `mysql://user@host[:port]/name`
 * (optionally `?socket=/path`); the password is read from `db_password_file`, which must
 * not be readable by group or others, and is never the vault passphrase.
 */
import { createPool, type Pool, type PoolConnection, type ResultSetHeader } from 'mysql2/promise';
import { readPrivate } from '../private-file.js';
import { PasstoreError } from '../errors.js';
import { splitStatements, type Row, type RunResult, type SqlDriver, type SqlValue } from './driver.js';

export interface MysqlTarget {
  user: string;
  host: string;
  port: number;
  database: string;
  socketPath?: string;
}

/** Parses `mysql://user@host[:port]/name[?socket=/path]`. */
export function parseMysqlUrl(url: string): MysqlTarget {
  const m = /^mysql:\/\/([^@/\s:]+)@([^/\s:]+)(?::(\d{1,5}))?\/([A-Za-z0-9_$]{1,64})(?:\?socket=(\/\S+))?$/.exec(url);
  if (!m) throw new PasstoreError('config', `db: expected mysql://user@host[:port]/name, not '${url}'`);
  return {
    user: m[1]!,
    host: m[2]!,
    port: m[3] ? Number(m[3]) : 3306,
    database: m[4]!,
    ...(m[5] ? { socketPath: m[5] } : {}),
  };
}

/** Reads the database password from its file, refusing one others can read. */
export function readDbPassword(file: string | undefined): string | undefined {
  if (!file) return undefined;
  // mysql2 takes the password as a string: the bytes read are wiped, the string cannot be.
  const bytes = readPrivate(file, { what: 'db_password_file', code: 'config', chmod: '600' }, 4096);
  try {
    return bytes.toString('utf8').replace(/\r?\n$/, '');
  } finally {
    bytes.fill(0);
  }
}

function wrapError(e: unknown): never {
  if (e instanceof PasstoreError) throw e;
  const err = e as { code?: string; sqlMessage?: string; message?: string; fatal?: boolean };
  // The server gone, refusing, or shutting down (a connection cut mid-statement, a
  // restart; mysql2 marks each such error fatal): one line naming the database.
  if (err.code && (err.fatal || /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ENOENT|ETIMEDOUT|EHOSTUNREACH|PROTOCOL_CONNECTION_LOST|PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR|PROTOCOL_SEQUENCE_TIMEOUT|ER_SERVER_SHUTDOWN|ER_CONNECTION_KILLED|ER_ACCESS_DENIED_ERROR|ER_BAD_DB_ERROR|ER_DBACCESS_DENIED_ERROR)$/.test(err.code))) {
    throw new PasstoreError('storage', `database: ${err.code}${err.sqlMessage ? ` (${err.sqlMessage})` : ''}`, { cause: e });
  }
  throw e;
}

class ConnectionDriver implements SqlDriver {
  readonly dialect = 'mysql' as const;
  constructor(private readonly conn: PoolConnection) {}

  // Inside a transaction too, a server gone is a storage error naming the database, also
  // when a caller (the audit trail) wraps it before the transaction sees it.
  async all<T extends Row = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    try {
      const [rows] = await this.conn.query(sql, params);
      return rows as T[];
    } catch (e) {
      return wrapError(e);
    }
  }

  async run(sql: string, params: SqlValue[] = []): Promise<RunResult> {
    try {
      const [r] = await this.conn.query<ResultSetHeader>(sql, params);
      return { changes: r.affectedRows, lastId: Number(r.insertId) };
    } catch (e) {
      return wrapError(e);
    }
  }

  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    return fn(this);
  }

  async script(sql: string): Promise<void> {
    for (const s of splitStatements(sql)) await this.conn.query(s);
  }

  async close(): Promise<void> {}
}

export class MysqlDriver implements SqlDriver {
  readonly dialect = 'mysql' as const;
  #pool: Pool;

  private constructor(pool: Pool) {
    this.#pool = pool;
  }

  /** Connects, and checks the connection works, so a bad URL fails at start. */
  static async open(url: string, password: string | undefined): Promise<MysqlDriver> {
    const t = parseMysqlUrl(url);
    const pool = createPool({
      user: t.user,
      password,
      database: t.database,
      ...(t.socketPath ? { socketPath: t.socketPath } : { host: t.host, port: t.port }),
      connectionLimit: 4,
      supportBigNumbers: true,
      bigNumberStrings: false,
      dateStrings: true,
      charset: 'utf8mb4_bin',
    });
    try {
      const conn = await pool.getConnection();
      await conn.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES'");
      conn.release();
    } catch (e) {
      await pool.end().catch(() => undefined);
      wrapError(e);
    }
    pool.on('connection', (conn) => {
      conn.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES'");
    });
    return new MysqlDriver(pool);
  }

  async all<T extends Row = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    try {
      const [rows] = await this.#pool.query(sql, params);
      return rows as T[];
    } catch (e) {
      return wrapError(e);
    }
  }

  async run(sql: string, params: SqlValue[] = []): Promise<RunResult> {
    try {
      const [r] = await this.#pool.query<ResultSetHeader>(sql, params);
      return { changes: r.affectedRows, lastId: Number(r.insertId) };
    } catch (e) {
      return wrapError(e);
    }
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    let conn: PoolConnection;
    try {
      conn = await this.#pool.getConnection();
    } catch (e) {
      return wrapError(e);
    }
    try {
      await conn.query('START TRANSACTION');
      const result = await fn(new ConnectionDriver(conn));
      await conn.query('COMMIT');
      return result;
    } catch (e) {
      await conn.query('ROLLBACK').catch(() => undefined);
      return wrapError(e);
    } finally {
      conn.release();
    }
  }

  async script(sql: string): Promise<void> {
    for (const s of splitStatements(sql)) await this.run(s);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
