/**
 * The small interface each SQL dialect implements (`sqlite-driver.ts`, `mysql-driver.ts`).
 * Both take `?` placeholders; the store above writes one SQL text for both wherever the
 * dialects agree, and asks `dialect` where they do not.
 */

export type Dialect = 'sqlite' | 'mysql';
export type SqlValue = string | number | bigint | Buffer | null;
export type Row = Record<string, unknown>;

export interface RunResult {
  changes: number;
  lastId: number;
}

export interface SqlDriver {
  readonly dialect: Dialect;
  /** Rows of a query. */
  all<T extends Row = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  /** Runs a statement. */
  run(sql: string, params?: SqlValue[]): Promise<RunResult>;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws
   * (or when the process dies before the commit).
   */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  /** Runs a migration script of several statements. */
  script(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** Splits a migration file into statements (our own files: `;` ends a line). */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\r?\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
}
