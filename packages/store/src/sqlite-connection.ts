/**
 * One SQLite connection as Countersign uses it: WAL, synchronous=FULL (durability is not
 * negotiable), a busy timeout, foreign keys, in-memory sub-journals. Shared by the store on
 * the main thread and its writer thread.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  type CompiledQuery,
  DummyDriver,
  Kysely,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import { type Executor, UniqueViolation } from './executor.js';
import type { Database } from './schema.js';

/** Kysely as a query compiler only: the SQL it builds is run by our executor. */
export function sqliteCompiler(): Kysely<Database> {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
}

/** Opens the write connection with the settings every writer must have. */
export function openWriteConnection(file: string, busyTimeoutMs: number): BetterSqlite3.Database {
  mkdirSync(dirname(file), { recursive: true });
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
  db.pragma('foreign_keys = ON');
  // Each unit runs in a SAVEPOINT; its sub-journal would otherwise be a temp file, which
  // cost ~90 us of syscalls per unit. Durability is unaffected: only the WAL and the
  // database file are durable state, and COMMIT still fsyncs the WAL (synchronous=FULL).
  db.pragma('temp_store = MEMORY');
  return db;
}

export class SqliteExecutor implements Executor {
  readonly #statements = new Map<string, BetterSqlite3.Statement>();
  constructor(readonly db: BetterSqlite3.Database) {}

  #prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  allSync<R>(query: CompiledQuery): R[] {
    return this.#prepare(query.sql).all(...(query.parameters as unknown[])) as R[];
  }

  runSync(query: CompiledQuery): { changes: number } {
    try {
      return { changes: this.#prepare(query.sql).run(...(query.parameters as unknown[])).changes };
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new UniqueViolation((error as Error).message, { cause: error });
      }
      throw error;
    }
  }

  async all<R>(query: CompiledQuery): Promise<R[]> {
    return this.allSync<R>(query);
  }

  async run(query: CompiledQuery): Promise<{ changes: number }> {
    return this.runSync(query);
  }
}
