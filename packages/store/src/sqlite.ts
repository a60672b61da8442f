/**
 * The embedded default: one SQLite file, WAL, synchronous=FULL (durability is not
 * negotiable), busy timeout, BEGIN IMMEDIATE for writes (THREATS.md H7).
 *
 * Group commit: units of work that arrive together run one after another inside ONE
 * transaction, each in its own SAVEPOINT (a failing unit rolls back alone), then one COMMIT
 * (one fsync) and only then does any unit's caller hear back. Nobody is answered before their
 * writes are durable; the fsync is shared.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type AgentRecord,
  type AuditEvent,
  CountersignError,
  type Store,
  type StoreTx,
} from '@countersign/core';
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
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import type { Database } from './schema.js';
import { type IdSource, SqlTx, toAuditEvent } from './sql-store.js';

export interface SqliteStoreOptions {
  /** Path of the database file. */
  readonly file: string;
  readonly ids: IdSource;
  /** Most units in one group commit. */
  readonly maxBatch?: number;
  readonly busyTimeoutMs?: number;
}

function compileOnly(): Kysely<Database> {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
}

class SqliteExecutor implements Executor {
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

interface Unit {
  work: (tx: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

function unavailable(error: unknown): CountersignError {
  if (error instanceof CountersignError) return error;
  return new CountersignError('CS_STORE_UNAVAILABLE', 'the store could not complete the operation', {
    cause: error,
  });
}

export class SqliteStore implements Store {
  readonly #kysely = compileOnly();
  readonly #writer: SqliteExecutor;
  readonly #reader: SqliteExecutor;
  readonly #tx: SqlTx;
  readonly #readTx: SqlTx;
  readonly #maxBatch: number;
  #queue: Unit[] = [];
  #flushing = false;
  #closed = false;
  #lastWriteError: { at: number; message: string } | null = null;

  private constructor(
    options: SqliteStoreOptions,
    writer: BetterSqlite3.Database,
    reader: BetterSqlite3.Database,
  ) {
    this.#writer = new SqliteExecutor(writer);
    this.#reader = new SqliteExecutor(reader);
    this.#tx = new SqlTx(this.#kysely, this.#writer, options.ids);
    this.#readTx = new SqlTx(this.#kysely, this.#reader, options.ids);
    this.#maxBatch = options.maxBatch ?? 256;
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    mkdirSync(dirname(options.file), { recursive: true });
    const writer = new BetterSqlite3(options.file);
    const busy = options.busyTimeoutMs ?? 5000;
    writer.pragma('journal_mode = WAL');
    writer.pragma('synchronous = FULL');
    writer.pragma(`busy_timeout = ${Math.trunc(busy)}`);
    writer.pragma('foreign_keys = ON');
    migrate(writer, compileOnly());
    const reader = new BetterSqlite3(options.file, { readonly: true });
    reader.pragma(`busy_timeout = ${Math.trunc(busy)}`);
    return new SqliteStore(options, writer, reader);
  }

  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable(new Error('store is closed')));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0, this.#maxBatch);
    const db = this.#writer.db;
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      db.exec('BEGIN IMMEDIATE');
      for (const unit of batch) {
        db.exec('SAVEPOINT unit');
        try {
          const value = await unit.work(this.#tx);
          db.exec('RELEASE unit');
          outcomes.push({ ok: true, value });
        } catch (error) {
          db.exec('ROLLBACK TO unit');
          db.exec('RELEASE unit');
          // A driver error inside a unit (constraint, I/O) is a store failure: fail closed.
          outcomes.push({ ok: false, error: unavailable(error) });
        }
      }
      db.exec('COMMIT');
    } catch (error) {
      // BEGIN or COMMIT failed (busy, disk full, I/O): nothing in this batch happened.
      this.#lastWriteError = { at: Date.now(), message: (error as Error).message };
      if (db.inTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // The connection is already out of the transaction.
        }
      }
      const failure = unavailable(error);
      for (const unit of batch) unit.reject(failure);
      this.#afterFlush();
      return;
    }
    this.#lastWriteError = null;
    batch.forEach((unit, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) unit.resolve(outcome.value);
      else unit.reject(outcome.error);
    });
    this.#afterFlush();
  }

  #afterFlush(): void {
    if (this.#queue.length > 0) setImmediate(() => void this.#flush());
    else this.#flushing = false;
  }

  /** Null when the last group commit succeeded; otherwise why it failed (for readiness). */
  writeHealth(): { at: number; message: string } | null {
    return this.#lastWriteError;
  }

  /** The durability settings in force on the writing connection (for health checks and tests). */
  durability(): { journalMode: string; synchronous: number } {
    const db = this.#writer.db;
    return {
      journalMode: String(db.pragma('journal_mode', { simple: true })),
      synchronous: Number(db.pragma('synchronous', { simple: true })),
    };
  }

  async read<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.#closed) throw unavailable(new Error('store is closed'));
    try {
      return await work(this.#readTx);
    } catch (error) {
      if (error instanceof CountersignError) throw error;
      throw unavailable(error);
    }
  }

  async listAgents(): Promise<AgentRecord[]> {
    const ids = this.#reader.allSync<{ id: string }>(
      this.#kysely.selectFrom('agents').select('id').orderBy('id').compile(),
    );
    const agents: AgentRecord[] = [];
    for (const { id } of ids) {
      const agent = await this.#readTx.getAgent(id);
      if (agent) agents.push(agent);
    }
    return agents;
  }

  async *auditEvents(): AsyncIterable<AuditEvent> {
    const pageSize = 1000;
    let after = 0;
    for (;;) {
      const rows = this.#reader.allSync<Database['audit_events']>(
        this.#kysely
          .selectFrom('audit_events')
          .selectAll()
          .where('seq', '>', after)
          .orderBy('seq')
          .limit(pageSize)
          .compile(),
      );
      for (const row of rows) yield toAuditEvent(row);
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  async pruneTokenIds(before: number): Promise<number> {
    return this.transaction(async () => {
      const r = this.#writer.runSync(
        this.#kysely.deleteFrom('token_ids').where('expires_at', '<', before).compile(),
      );
      return r.changes;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#flushing) await new Promise((r) => setImmediate(r));
    this.#reader.db.close();
    this.#writer.db.close();
  }
}

/** Applies pending migrations, each in its own transaction with its version bump. */
function migrate(db: BetterSqlite3.Database, kysely: Kysely<Database>): void {
  const exec = new SqliteExecutor(db);
  const hasMeta =
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
  let current = 0;
  if (hasMeta) {
    const row = exec.allSync<{ value: string }>(
      kysely.selectFrom('meta').select('value').where('key', '=', 'schema_version').compile(),
    )[0];
    current = row ? Number(row.value) : 0;
  }
  if (current > SCHEMA_VERSION) {
    throw new CountersignError(
      'CS_STORE_UNAVAILABLE',
      `database schema version ${current} is newer than this Countersign (${SCHEMA_VERSION}); refusing to serve`,
    );
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      for (const stmt of migration.statements(kysely)) exec.runSync(stmt);
      exec.runSync(
        kysely
          .insertInto('meta')
          .values({ key: 'schema_version', value: String(migration.version) })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(migration.version) }))
          .compile(),
      );
    }).immediate();
  }
}
