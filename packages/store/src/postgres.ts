/**
 * PostgreSQL: several stateless Countersign instances on one database.
 *
 * - A unit of work is one real transaction on one pooled connection (READ COMMITTED unless
 *   told otherwise). Invariants rest on unique constraints and single-row conditional updates
 *   (THREATS.md H6), never on the isolation level; a unit that loses a serialization or
 *   deadlock race (40001, 40P01) is run again from the start, a bounded number of times.
 * - The audit chain stays one linear chain across instances: a unit's events are written at
 *   its end, after a transaction-scoped advisory lock that every appender takes, and the head
 *   is read only after the lock is held. The lock is the last one a unit takes and is held
 *   only for the head read, one insert and the commit, so it cannot join a deadlock cycle.
 * - Fail closed and fast (E9): waiting for a pooled connection, each statement and a stalled
 *   network are all bounded; any driver or connection error is CS_STORE_UNAVAILABLE with no
 *   effect, and `writeHealth()` says why until a unit commits again.
 * - Instances tell each other about request changes with LISTEN/NOTIFY (`changes()`), on a
 *   dedicated connection that reconnects; it only makes things faster: the server also polls.
 *
 * This module is its own entry point (`@countersign/store/postgres`): SQLite users never
 * load `pg`.
 */
import {
  type AgentRecord,
  type AuditEvent,
  CountersignError,
  type Store,
  type StoreTx,
} from '@countersign/core';
import {
  type CompiledQuery,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
} from 'kysely';
import pg from 'pg';
import type { ChangeChannel, ChangeChannelStatus } from './change-channel.js';
import { type Executor, UniqueViolation } from './executor.js';
import { MIGRATIONS, readSchemaVersion, refuseNewerSchema, writeSchemaVersion } from './migrations.js';
import type { Database } from './schema.js';
import { auditWriteFailed, type IdSource, SqlTx } from './sql-store.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database?...` */
  readonly url: string;
  readonly ids: IdSource;
  /** Most pooled connections this instance opens (default 10). */
  readonly poolMax?: number;
  /** Longest wait for a pooled connection, or to open one (default 2000 ms). E9. */
  readonly acquireTimeoutMs?: number;
  /** Longest a statement may run, lock waits included (default 5000 ms). E9. */
  readonly statementTimeoutMs?: number;
  /** Longest a migration may wait or run (default 120000 ms). */
  readonly migrationTimeoutMs?: number;
  /** Runs of one unit at most when it loses a serialization or deadlock race (default 5). */
  readonly maxAttempts?: number;
  /** Shown in `pg_stat_activity` (default `countersign`). */
  readonly applicationName?: string;
}

/** Advisory lock keys: (namespace, what). The namespace spells "CSN1". */
const LOCK_NAMESPACE = 0x43534e31;
const AUDIT_CHAIN_LOCK = 1;
const MIGRATION_LOCK = 2;

/** The LISTEN/NOTIFY channel for request changes. */
export const CHANGE_CHANNEL = 'countersign_requests';
/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7000;

/** SQLSTATEs after which the whole unit is run again (PostgreSQL appendix A). */
const RETRYABLE = new Set(['40001', '40P01']);

function compileOnly(): Kysely<Database> {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
}

/** The SQLSTATE of a driver error, looking through wrappers (`cause`). */
export function sqlState(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 6 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A chain conflict seen at insert time (a writer that skipped the lock): run the unit again. */
class ChainConflict extends Error {
  readonly code = '40001';
}

function isRetryable(error: unknown): boolean {
  if (error instanceof ChainConflict) return true;
  const state = sqlState(error);
  return state !== undefined && RETRYABLE.has(state);
}

/** Errors that say the database or the connection is in trouble (not a constraint, not a domain rule). */
function isInfrastructure(error: unknown): boolean {
  if (error instanceof CountersignError && error.code !== 'CS_AUDIT_WRITE_FAILED') {
    return error.code === 'CS_STORE_UNAVAILABLE';
  }
  const state = sqlState(error);
  // Class 23 is integrity constraint violation: the database works, the unit broke a rule.
  return state === undefined ? !(error instanceof UniqueViolation) : !state.startsWith('23');
}

function unavailable(
  error: unknown,
  message = 'the store could not complete the operation',
): CountersignError {
  if (error instanceof CountersignError) return error;
  return new CountersignError('CS_STORE_UNAVAILABLE', message, { cause: error });
}

/** A one-line reason for health checks, from the driver's own error: never the connection string. */
function describe(error: unknown): string {
  let root: unknown = error;
  while (root instanceof Error && root.cause !== undefined && root.cause !== root) root = root.cause;
  const state = sqlState(error);
  const message = root instanceof Error ? root.message : String(root);
  return state ? `${message} (SQLSTATE ${state})` : message;
}

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

class PgExecutor implements Executor {
  constructor(private readonly target: Queryable) {}

  async all<R>(query: CompiledQuery): Promise<R[]> {
    try {
      const result = await this.target.query(query.sql, query.parameters as unknown[]);
      return result.rows as R[];
    } catch (error) {
      throw translate(error);
    }
  }

  async run(query: CompiledQuery): Promise<{ changes: number }> {
    try {
      const result = await this.target.query(query.sql, query.parameters as unknown[]);
      return { changes: result.rowCount ?? 0 };
    } catch (error) {
      throw translate(error);
    }
  }
}

function translate(error: unknown): unknown {
  if (sqlState(error) === '23505') {
    const constraint = (error as { constraint?: string }).constraint ?? 'unknown';
    return new UniqueViolation(constraint, { cause: error });
  }
  return error;
}

/**
 * StoreTx for one PostgreSQL unit: audit events are collected and written at the end of the
 * unit, under the chain lock, so the lock is the last one taken and is held briefly.
 */
class PostgresUnitTx extends SqlTx {
  readonly #pending: Array<{ input: Parameters<StoreTx['appendAudit']>[0]; at: number }> = [];

  override async appendAudit(input: Parameters<StoreTx['appendAudit']>[0], at: number): Promise<void> {
    // Chained when the unit ends (flushAudit), under the chain lock.
    this.#pending.push({ input, at });
  }

  /** Writes the unit's events: lock, read the head (after the lock: a fresh snapshot), insert. */
  async flushAudit(): Promise<void> {
    if (this.#pending.length === 0) return;
    try {
      await this.exec.all(
        sql`select pg_advisory_xact_lock(${LOCK_NAMESPACE}, ${AUDIT_CHAIN_LOCK})`.compile(this.db),
      );
      const head = await this.readAuditHead();
      await this.writeAuditEvents(head, this.#pending);
    } catch (error) {
      // Only a writer that skipped the lock can fork the chain: the primary key refuses the
      // fork and the unit runs again.
      if (error instanceof UniqueViolation) throw new ChainConflict('audit chain moved', { cause: error });
      throw auditWriteFailed(error);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface PostgresStoreStats {
  readonly poolTotal: number;
  readonly poolIdle: number;
  readonly poolWaiting: number;
  /** Units run again after a serialization failure or deadlock. */
  readonly retries: number;
}

export class PostgresStore implements Store {
  readonly #kysely = compileOnly();
  readonly #pool: pg.Pool;
  readonly #options: PostgresStoreOptions;
  readonly #reader: PgExecutor;
  readonly #readTx: SqlTx;
  readonly #maxAttempts: number;
  #closed = false;
  #retries = 0;
  #lastWriteError: { at: number; message: string } | null = null;
  #channel: PgChangeChannel | null = null;

  private constructor(options: PostgresStoreOptions, pool: pg.Pool) {
    this.#options = options;
    this.#pool = pool;
    this.#reader = new PgExecutor(pool);
    this.#readTx = new SqlTx(this.#kysely, this.#reader, options.ids);
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    // An idle pooled connection that fails (server restart) must not crash the process.
    pool.on('error', (error) => this.#noteFailure(error));
  }

  /** Connects, migrates under an advisory lock (instances starting together wait their turn), refuses a newer schema. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const statementTimeout = options.statementTimeoutMs ?? 5000;
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolMax ?? 10,
      connectionTimeoutMillis: options.acquireTimeoutMs ?? 2000,
      idleTimeoutMillis: 30_000,
      statement_timeout: statementTimeout,
      // The client-side bound catches a stalled network the server cannot time out.
      query_timeout: statementTimeout + 1000,
      // A stuck instance must not hold the chain lock (or any row) forever.
      idle_in_transaction_session_timeout: Math.max(10_000, statementTimeout * 2),
      application_name: options.applicationName ?? 'countersign',
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    const store = new PostgresStore(options, pool);
    try {
      await migrate(pool, store.#kysely, options.migrationTimeoutMs ?? 120_000);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw unavailable(error, `PostgreSQL store failed to open: ${describe(error)}`);
    }
    return store;
  }

  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#run(work);
  }

  async #run<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw unavailable(new Error('store is closed'));
      try {
        return await this.#attempt(work);
      } catch (error) {
        if (isRetryable(error) && attempt < this.#maxAttempts) {
          this.#retries++;
          // Jittered, growing pause: racing units should not collide again in lockstep.
          await sleep(Math.random() * 10 * attempt);
          continue;
        }
        if (isInfrastructure(error)) this.#noteFailure(error);
        if (error instanceof CountersignError) throw error;
        throw unavailable(error);
      }
    }
  }

  async #attempt<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw unavailable(
        error,
        `no database connection within ${this.#options.acquireTimeoutMs ?? 2000} ms: ${describe(error)}`,
      );
    }
    let broken: Error | undefined;
    // A checked-out client reports a lost connection as an event: without a listener it
    // would crash the process. The unit's next query fails and the client is dropped.
    const onError = (error: Error) => {
      broken ??= error;
    };
    client.on('error', onError);
    try {
      // READ COMMITTED whatever the database's default: each statement sees what committed
      // before it, so a row lock or the chain lock, once granted, is followed by fresh reads.
      // The invariants need no more (THREATS.md H6); a stricter default would only make the
      // chain's head read stale (it is read after the lock, in a snapshot taken before it).
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      try {
        const tx = new PostgresUnitTx(this.#kysely, new PgExecutor(client), this.#options.ids);
        const value = await work(tx);
        await tx.flushAudit();
        await client.query('COMMIT');
        this.#lastWriteError = null;
        return value;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        throw error;
      }
    } catch (error) {
      // A read-only session (a standby, or a database made read-only by default) keeps its
      // defaults while it lives: drop it, so the next unit connects afresh and works again as
      // soon as the database does.
      if (sqlState(error) === '25006') broken ??= error as Error;
      // Not an SQL error (a timeout, a reset): the connection's state is unknown; drop it.
      if (
        sqlState(error) === undefined &&
        !(error instanceof CountersignError) &&
        !(error instanceof UniqueViolation)
      ) {
        broken ??= error as Error;
      }
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  #noteFailure(error: unknown): void {
    this.#lastWriteError = { at: Date.now(), message: describe(error) };
  }

  /** Null when the last unit committed; otherwise why units fail (for readiness). */
  writeHealth(): { at: number; message: string } | null {
    return this.#lastWriteError;
  }

  stats(): PostgresStoreStats {
    return {
      poolTotal: this.#pool.totalCount,
      poolIdle: this.#pool.idleCount,
      poolWaiting: this.#pool.waitingCount,
      retries: this.#retries,
    };
  }

  /** Settings that matter for durability and isolation, as the server reports them. */
  async settings(): Promise<{ serverVersion: string; synchronousCommit: string; isolation: string }> {
    const rows = await this.#reader.all<{ name: string; setting: string }>(
      sql`select name, setting from pg_settings where name in ('server_version', 'synchronous_commit', 'default_transaction_isolation')`.compile(
        this.#kysely,
      ),
    );
    const get = (name: string) => rows.find((r) => r.name === name)?.setting ?? 'unknown';
    return {
      serverVersion: get('server_version'),
      synchronousCommit: get('synchronous_commit'),
      isolation: 'read committed',
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
    return this.read(() => this.#readTx.listAgents());
  }

  async *auditEvents(): AsyncIterable<AuditEvent> {
    const pageSize = 1000;
    let after = 0;
    for (;;) {
      const events = await this.read(() => this.#readTx.auditEventsAfter(after, pageSize));
      yield* events;
      if (events.length < pageSize) return;
      after = events[events.length - 1]!.seq;
    }
  }

  async pruneTokenIds(before: number): Promise<number> {
    // A unit like any other, so it also tells writeHealth() whether writes work again.
    return this.#run((tx) => (tx as PostgresUnitTx).pruneTokenIds(before));
  }

  /** Cross-instance request-change notifications (LISTEN/NOTIFY) on this database. */
  changes(): ChangeChannel {
    this.#channel ??= new PgChangeChannel(this.#pool, this.#options);
    return this.#channel;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#channel?.close();
    await this.#pool.end();
  }
}

/** Applies pending migrations one transaction each, each under the migration lock. */
async function migrate(pool: pg.Pool, kysely: Kysely<Database>, timeoutMs: number): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken ??= error;
  };
  client.on('error', onError);
  try {
    const exec = new PgExecutor(client);
    for (;;) {
      await client.query('BEGIN');
      try {
        await exec.all(
          sql`select set_config('statement_timeout', ${String(Math.trunc(timeoutMs))}, true)`.compile(kysely),
        );
        // Instances starting together wait here; each then sees the version the last one left.
        await exec.all(
          sql`select pg_advisory_xact_lock(${LOCK_NAMESPACE}, ${MIGRATION_LOCK})`.compile(kysely),
        );
        const [present] = await exec.all<{ present: boolean }>(
          sql`select to_regclass(${'meta'}::text) is not null as present`.compile(kysely),
        );
        let current = 0;
        if (present?.present) {
          const [row] = await exec.all<{ value: string }>(readSchemaVersion(kysely));
          current = row ? Number(row.value) : 0;
        }
        refuseNewerSchema(current);
        const next = MIGRATIONS.find((m) => m.version > current);
        if (!next) {
          await client.query('COMMIT');
          return;
        }
        for (const stmt of next.statements(kysely)) await exec.run(stmt);
        await exec.run(writeSchemaVersion(kysely, next.version));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
        throw error;
      }
    }
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/**
 * LISTEN/NOTIFY for request changes. Publishing coalesces ids per event-loop turn into one
 * NOTIFY; listening uses one dedicated connection that reconnects with backoff and reports
 * each (re)connection so the caller can catch up on what it missed.
 */
class PgChangeChannel implements ChangeChannel {
  readonly #pool: pg.Pool;
  readonly #options: PostgresStoreOptions;
  readonly #listeners = new Set<{
    onChange: (requestIds: string[]) => void;
    onStatus: (status: ChangeChannelStatus) => void;
  }>();
  #pending = new Set<string>();
  #scheduled = false;
  #inFlight = new Set<Promise<unknown>>();
  #client: pg.Client | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #reconnect: NodeJS.Timeout | null = null;
  #failures = 0;
  #closed = false;
  #status: ChangeChannelStatus = { listening: false, since: Date.now(), error: 'not started' };
  #published = 0;
  #publishFailures = 0;
  #received = 0;

  constructor(pool: pg.Pool, options: PostgresStoreOptions) {
    this.#pool = pool;
    this.#options = options;
  }

  publish(requestId: string): void {
    if (this.#closed) return;
    this.#pending.add(requestId);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const ids = [...this.#pending];
    this.#pending = new Set();
    const payloads: string[] = [];
    let current = '';
    for (const id of ids) {
      if (current.length + id.length + 1 > MAX_PAYLOAD) {
        payloads.push(current);
        current = '';
      }
      current = current ? `${current},${id}` : id;
    }
    if (current) payloads.push(current);
    for (const payload of payloads) {
      const p = this.#pool
        .query('select pg_notify($1, $2)', [CHANGE_CHANNEL, payload])
        .then(
          () => {
            this.#published++;
          },
          () => {
            // Only a delay: every instance also polls the audit chain.
            this.#publishFailures++;
          },
        )
        .finally(() => this.#inFlight.delete(p));
      this.#inFlight.add(p);
    }
  }

  subscribe(
    onChange: (requestIds: string[]) => void,
    onStatus: (status: ChangeChannelStatus) => void = () => undefined,
  ): () => void {
    const entry = { onChange, onStatus };
    this.#listeners.add(entry);
    if (!this.#client && !this.#reconnect && !this.#closed) void this.#listen();
    return () => {
      this.#listeners.delete(entry);
    };
  }

  status(): ChangeChannelStatus & { published: number; publishFailures: number; received: number } {
    return {
      ...this.#status,
      published: this.#published,
      publishFailures: this.#publishFailures,
      received: this.#received,
    };
  }

  #setStatus(status: ChangeChannelStatus): void {
    this.#status = status;
    for (const l of this.#listeners) l.onStatus(status);
  }

  async #listen(): Promise<void> {
    const statementTimeout = this.#options.statementTimeoutMs ?? 5000;
    const client = new pg.Client({
      connectionString: this.#options.url,
      connectionTimeoutMillis: this.#options.acquireTimeoutMs ?? 2000,
      query_timeout: statementTimeout + 1000,
      application_name: `${this.#options.applicationName ?? 'countersign'}-listen`,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    this.#client = client;
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('the listening connection ended')));
    client.on('notification', (message) => {
      if (message.channel !== CHANGE_CHANNEL || !message.payload) return;
      this.#received++;
      const ids = message.payload.split(',').filter((id) => id.length > 0);
      for (const l of this.#listeners) l.onChange(ids);
    });
    try {
      await client.connect();
      // A constant identifier, not input.
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (error) {
      this.#lost(client, error);
      return;
    }
    if (this.#client !== client) return;
    this.#failures = 0;
    // A half-open TCP connection shows up only when we talk: ask something now and then.
    this.#heartbeat = setInterval(() => {
      client.query('select 1').catch((error: unknown) => this.#lost(client, error));
    }, 10_000);
    this.#heartbeat.unref();
    this.#setStatus({ listening: true, since: Date.now(), error: null });
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client) return;
    this.#client = null;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    if (this.#closed) return;
    this.#failures++;
    this.#setStatus({ listening: false, since: Date.now(), error: describe(error) });
    const delay = Math.min(5000, 100 * 2 ** Math.min(this.#failures - 1, 6));
    this.#reconnect = setTimeout(() => {
      this.#reconnect = null;
      if (!this.#closed && this.#listeners.size > 0) void this.#listen();
    }, delay);
    this.#reconnect.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#scheduled) this.#flush();
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    if (this.#reconnect) clearTimeout(this.#reconnect);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}
