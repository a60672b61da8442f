/**
 * The embedded default: one SQLite file, WAL, synchronous=FULL (durability is not
 * negotiable), busy timeout, BEGIN IMMEDIATE for writes (THREATS.md H7).
 *
 * Group commit: units of work that arrive together run one after another inside ONE
 * transaction, each in its own SAVEPOINT (a failing unit rolls back alone), then one COMMIT
 * (one fsync) and only then does any unit's caller hear back. Nobody is answered before their
 * writes are durable; the fsync is shared.
 *
 * Where the writes run: `writer: 'thread'` (the server's choice) gives the write connection
 * its own thread (sqlite-writer.ts). Core's named units (`STORE_UNITS`: the decision's unit,
 * assertion consumption) run there whole; closure units run on the main thread and send each
 * StoreTx call over. Statements, hashing and the fsync then never block the event loop.
 * A group of named units only travels as ONE message and is answered once, after its COMMIT;
 * the next such group may be sent while one commits, so the writer never idles waiting for
 * this event loop. A group with closure units goes alone, after the groups in flight.
 * `writer: 'inline'` keeps everything on the calling thread (CLI commands, small tools).
 * Reads always use a separate read-only connection on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import {
  type AgentRecord,
  type AuditEvent,
  CountersignError,
  STORE_UNITS,
  type Store,
  type StoreTx,
  type StoreUnitArgs,
  type StoreUnitName,
  type StoreUnitResult,
} from '@countersign/core';
import BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { failpoint } from './failpoint.js';
import { MIGRATIONS, readSchemaVersion, refuseNewerSchema, writeSchemaVersion } from './migrations.js';
import type { Database } from './schema.js';
import { type IdSource, SqlTx } from './sql-store.js';
import { openWriteConnection, SqliteExecutor, sqliteCompiler } from './sqlite-connection.js';
import { decodeError, type FromWriter, type ToWriter, type WireOutcome } from './writer-protocol.js';

export interface SqliteStoreOptions {
  /** Path of the database file. */
  readonly file: string;
  /** Ids for audit events written on the calling thread (the writer thread makes its own). */
  readonly ids: IdSource;
  /** Most units in one group commit. */
  readonly maxBatch?: number;
  readonly busyTimeoutMs?: number;
  /** Where writes run; default `inline`. */
  readonly writer?: 'inline' | 'thread';
}

type Unit =
  | {
      readonly kind: 'closure';
      readonly work: (tx: StoreTx) => Promise<unknown>;
      readonly resolve: (value: unknown) => void;
      readonly reject: (error: unknown) => void;
    }
  | {
      readonly kind: 'named';
      readonly name: StoreUnitName;
      readonly args: unknown;
      readonly resolve: (value: unknown) => void;
      readonly reject: (error: unknown) => void;
    };

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function unavailable(error: unknown): CountersignError {
  if (error instanceof CountersignError) return error;
  return new CountersignError('CS_STORE_UNAVAILABLE', 'the store could not complete the operation', {
    cause: error,
  });
}

/**
 * The main thread's side of the process's one writer thread: numbered requests, answered in
 * order. Started on first use, unref'd (it never keeps the process alive), started again on
 * first use after a crash; a crash fails every unit in flight (fail closed).
 */
class WriterThread {
  static #current: WriterThread | null = null;

  static get(): WriterThread {
    if (!WriterThread.#current || WriterThread.#current.#dead) WriterThread.#current = new WriterThread();
    return WriterThread.#current;
  }

  readonly #worker: Worker;
  readonly #waiting = new Map<number, (outcome: Outcome) => void>();
  #nextId = 1;
  #dead: Error | null = null;

  private constructor() {
    this.#worker = new Worker(new URL('./sqlite-writer-entry.mjs', import.meta.url), { execArgv: [] });
    this.#worker.unref();
    this.#worker.on('message', (m: FromWriter) => {
      const settle = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      // Idle, the thread must not keep the process alive; awaited, it must.
      if (this.#waiting.size === 0) this.#worker.unref();
      settle?.(m.ok ? { ok: true, value: m.value } : { ok: false, error: decodeError(m.error) });
    });
    this.#worker.on('error', (error) => this.#die(error instanceof Error ? error : new Error(String(error))));
    this.#worker.on('exit', (code) => this.#die(new Error(`the SQLite writer thread exited (code ${code})`)));
  }

  #die(error: Error): void {
    if (this.#dead) return;
    this.#dead = error;
    for (const settle of this.#waiting.values()) settle({ ok: false, error });
    this.#waiting.clear();
  }

  get dead(): Error | null {
    return this.#dead;
  }

  send(message: ToWriter): void {
    if (!this.#dead) this.#worker.postMessage(message);
  }

  /** Sends a message that is answered; resolves with the outcome (never rejects). */
  ask(build: (id: number) => ToWriter): Promise<Outcome> {
    if (this.#dead) return Promise.resolve({ ok: false, error: this.#dead });
    const id = this.#nextId++;
    if (this.#waiting.size === 0) this.#worker.ref();
    return new Promise<Outcome>((settle) => {
      this.#waiting.set(id, settle);
      try {
        this.#worker.postMessage(build(id));
      } catch (error) {
        // Not sent (arguments that cannot be cloned): it never ran, so it simply failed.
        this.#waiting.delete(id);
        if (this.#waiting.size === 0) this.#worker.unref();
        settle({ ok: false, error });
      }
    });
  }

  /** A StoreTx whose every method is a call on the writer thread (for closure units). */
  txProxy(db: number): StoreTx {
    return new Proxy({} as StoreTx, {
      get: (_target, method) => {
        if (typeof method !== 'string' || method === 'then') return undefined;
        return async (...args: unknown[]) => {
          const outcome = await this.ask((id) => ({ t: 'call', id, db, method, args }));
          if (!outcome.ok) throw outcome.error;
          return outcome.value;
        };
      },
    });
  }

  /** For tests of the crash path: ends the thread as a crash would. */
  async kill(): Promise<void> {
    await this.#worker.terminate();
  }

  static async killForTests(): Promise<void> {
    await WriterThread.#current?.kill();
  }
}

let nextDbId = 1;

/**
 * Groups of named units that may be on their way to the writer thread at once: one
 * committing, the next queued behind it. More would only make the groups smaller.
 */
const MAX_GROUPS_IN_FLIGHT = 2;

export class SqliteStore implements Store {
  readonly #kysely = sqliteCompiler();
  readonly #file: string;
  readonly #busyTimeoutMs: number;
  readonly #reader: SqliteExecutor;
  readonly #readTx: SqlTx;
  readonly #maxBatch: number;
  /** Inline mode: the write connection and its StoreTx on this thread. */
  readonly #inline: { db: BetterSqlite3.Database; tx: SqlTx } | null;
  /** Thread mode: this store's number on the writer thread, and the thread it was opened on. */
  readonly #dbId = nextDbId++;
  #thread: { thread: WriterThread; ready: Promise<Outcome> } | null = null;
  #queue: Unit[] = [];
  /** A flush is scheduled (setImmediate) but has not run yet. */
  #scheduled = false;
  /** A batch with closure units is talking to the writer step by step: nothing else is sent. */
  #exclusive = false;
  /** Groups of named units sent to the writer thread and not yet answered. */
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;
  #lastWriteError: { at: number; message: string } | null = null;

  private constructor(
    options: SqliteStoreOptions,
    reader: BetterSqlite3.Database,
    writer: BetterSqlite3.Database | null,
  ) {
    this.#file = options.file;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.#reader = new SqliteExecutor(reader);
    this.#readTx = new SqlTx(this.#kysely, this.#reader, options.ids);
    this.#maxBatch = options.maxBatch ?? 256;
    this.#inline = writer
      ? { db: writer, tx: new SqlTx(this.#kysely, new SqliteExecutor(writer), options.ids) }
      : null;
    if (!writer) this.#writerThread();
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    const busy = options.busyTimeoutMs ?? 5000;
    const writer = openWriteConnection(options.file, busy);
    try {
      migrate(writer, sqliteCompiler());
    } catch (error) {
      writer.close();
      throw error;
    }
    const reader = new BetterSqlite3(options.file, { readonly: true });
    reader.pragma(`busy_timeout = ${Math.trunc(busy)}`);
    if (options.writer === 'thread') {
      // The migrating connection is done; the writer thread opens its own.
      writer.close();
      return new SqliteStore(options, reader, null);
    }
    return new SqliteStore(options, reader, writer);
  }

  /** The writer thread, with this database open on it (again, after a crash). */
  #writerThread(): WriterThread {
    const thread = WriterThread.get();
    if (this.#thread?.thread !== thread) {
      const ready = thread.ask((id) => ({
        t: 'open',
        id,
        db: this.#dbId,
        file: this.#file,
        busyTimeoutMs: this.#busyTimeoutMs,
      }));
      const opened = { thread, ready };
      this.#thread = opened;
      // A database that could not be opened (unreadable, disk gone) is tried again by the
      // next unit: when the fault clears, the store recovers without a restart.
      void ready.then((outcome) => {
        if (!outcome.ok && this.#thread === opened) this.#thread = null;
      });
    }
    return thread;
  }

  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#enqueue<T>((resolve, reject) => ({
      kind: 'closure',
      work,
      resolve: resolve as (v: unknown) => void,
      reject,
    }));
  }

  runUnit<N extends StoreUnitName>(name: N, args: StoreUnitArgs<N>): Promise<StoreUnitResult<N>> {
    return this.#enqueue<StoreUnitResult<N>>((resolve, reject) => ({
      kind: 'named',
      name,
      args,
      resolve: resolve as (v: unknown) => void,
      reject,
    }));
  }

  #enqueue<T>(make: (resolve: (v: T) => void, reject: (e: unknown) => void) => Unit): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable(new Error('store is closed')));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push(make(resolve, reject));
      this.#kick();
    });
  }

  /**
   * Schedules a flush when there is work and room for it. Units that arrive while a group
   * commits wait for the next group: that is what shares the fsync.
   */
  #kick(): void {
    if (this.#scheduled || this.#exclusive || this.#queue.length === 0) return;
    if (this.#inFlight.size >= MAX_GROUPS_IN_FLIGHT) return; // kicked again when one is answered
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#exclusive || this.#queue.length === 0 || this.#inFlight.size >= MAX_GROUPS_IN_FLIGHT) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    if (!this.#inline && batch.every((unit) => unit.kind === 'named')) {
      // The hot path: the whole group in one message. It is self-contained, so the next group
      // may be sent before this one is answered: the writer starts it right after this COMMIT
      // instead of idling for a round trip through this (busy) event loop.
      const group = this.#runGroupOnThread(batch).then(
        (outcomes) => this.#settle(batch, outcomes, null),
        (error: unknown) => this.#settle(batch, [], error),
      );
      this.#inFlight.add(group);
      void group.finally(() => {
        this.#inFlight.delete(group);
        this.#kick();
      });
      this.#kick();
      return;
    }
    // Inline, or closure units (each StoreTx call a round trip): one group at a time, alone.
    this.#exclusive = true;
    await Promise.allSettled([...this.#inFlight]);
    let outcomes: Outcome[] = [];
    let failure: unknown = null;
    try {
      outcomes = this.#inline ? await this.#runInline(batch) : await this.#runOnThread(batch);
    } catch (error) {
      failure = error;
    }
    this.#settle(batch, outcomes, failure);
    this.#exclusive = false;
    this.#kick();
  }

  /** Answers every unit of a group: its own outcome, or the group's failure. */
  #settle(batch: readonly Unit[], outcomes: readonly Outcome[], failure: unknown): void {
    if (failure !== null) {
      // BEGIN or COMMIT failed (busy, disk full, I/O): nothing in this batch happened.
      this.#lastWriteError = { at: Date.now(), message: (failure as Error).message };
      const error = unavailable(failure);
      for (const unit of batch) unit.reject(error);
      return;
    }
    this.#lastWriteError = null;
    batch.forEach((unit, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) unit.resolve(outcome.value);
      // A driver error inside a unit (constraint, I/O) is a store failure: fail closed.
      else unit.reject(unavailable(outcome.error));
    });
  }

  /** One group commit of named units on the writer thread, in one message. Throws when BEGIN or COMMIT fails. */
  async #runGroupOnThread(batch: readonly Unit[]): Promise<Outcome[]> {
    const writer = this.#writerThread();
    const db = this.#dbId;
    const units = batch.map((unit) => {
      if (unit.kind !== 'named') throw new Error('a closure unit cannot go in a one-message group');
      return { name: unit.name, args: unit.args };
    });
    const answer = await writer.ask((id) => ({ t: 'group', id, db, units }));
    if (!answer.ok) throw answer.error;
    return (answer.value as WireOutcome[]).map((o) =>
      o.ok ? { ok: true, value: o.value } : { ok: false, error: decodeError(o.error) },
    );
  }

  /** One group commit on this thread. Throws when BEGIN or COMMIT fails. */
  async #runInline(batch: Unit[]): Promise<Outcome[]> {
    const { db, tx } = this.#inline!;
    const outcomes: Outcome[] = [];
    try {
      db.exec('BEGIN IMMEDIATE');
      // The write lock is ours until COMMIT: the audit head read once can be carried across units.
      tx.forgetAuditHead();
      for (const unit of batch) {
        db.exec('SAVEPOINT unit');
        try {
          const value =
            unit.kind === 'closure'
              ? await unit.work(tx)
              : await (STORE_UNITS[unit.name] as (t: StoreTx, a: unknown) => Promise<unknown>)(tx, unit.args);
          db.exec('RELEASE unit');
          outcomes.push({ ok: true, value });
        } catch (error) {
          db.exec('ROLLBACK TO unit');
          db.exec('RELEASE unit');
          // The unit's audit events are gone with it: read the head again.
          tx.forgetAuditHead();
          outcomes.push({ ok: false, error });
        }
      }
      const decision = batch.some((u) => u.kind === 'named' && u.name === 'commitAccessRequest');
      if (decision) failpoint('store.before-commit');
      db.exec('COMMIT');
      if (decision) failpoint('store.after-commit');
      return outcomes;
    } catch (error) {
      if (db.inTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // The connection is already out of the transaction.
        }
      }
      tx.forgetAuditHead();
      throw error;
    }
  }

  /** One group commit on the writer thread. Throws when BEGIN or COMMIT fails. */
  async #runOnThread(batch: Unit[]): Promise<Outcome[]> {
    const writer = this.#writerThread();
    const db = this.#dbId;
    writer.send({ t: 'begin', db });
    const pending: Array<Promise<Outcome>> = [];
    for (const unit of batch) {
      if (unit.kind === 'named') {
        // Named units are sent together and run back to back on the writer thread.
        pending.push(writer.ask((id) => ({ t: 'unit', id, db, name: unit.name, args: unit.args })));
        continue;
      }
      writer.send({ t: 'savepoint', db });
      try {
        const value = await unit.work(writer.txProxy(db));
        writer.send({ t: 'release', db });
        pending.push(Promise.resolve({ ok: true, value }));
      } catch (error) {
        writer.send({ t: 'rollback', db });
        pending.push(Promise.resolve({ ok: false, error }));
      }
    }
    const commit = await writer.ask((id) => ({ t: 'commit', id, db }));
    const outcomes = await Promise.all(pending);
    if (!commit.ok) throw commit.error;
    return outcomes;
  }

  /** Null when the last group commit succeeded; otherwise why it failed (for readiness). */
  writeHealth(): { at: number; message: string } | null {
    return this.#lastWriteError;
  }

  /** The durability settings in force on the writing connection (for health checks and tests). */
  async durability(): Promise<{ journalMode: string; synchronous: number }> {
    if (this.#inline) {
      const db = this.#inline.db;
      return {
        journalMode: String(db.pragma('journal_mode', { simple: true })),
        synchronous: Number(db.pragma('synchronous', { simple: true })),
      };
    }
    this.#writerThread();
    const ready = await this.#thread!.ready;
    if (!ready.ok) throw unavailable(ready.error);
    return ready.value as { journalMode: string; synchronous: number };
  }

  /** Ends the writer thread as a crash would (tests of the fail-closed path). */
  static async killWriterThreadForTests(): Promise<void> {
    await WriterThread.killForTests();
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
    return this.#readTx.listAgents();
  }

  async *auditEvents(): AsyncIterable<AuditEvent> {
    const pageSize = 1000;
    let after = 0;
    for (;;) {
      const events = await this.#readTx.auditEventsAfter(after, pageSize);
      yield* events;
      if (events.length < pageSize) return;
      after = events[events.length - 1]!.seq;
    }
  }

  async pruneTokenIds(before: number): Promise<number> {
    return this.runUnit('pruneTokenIds', { before });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#scheduled || this.#exclusive || this.#inFlight.size > 0 || this.#queue.length > 0) {
      await new Promise((r) => setImmediate(r));
    }
    const thread = this.#thread?.thread;
    if (thread && !thread.dead) await thread.ask((id) => ({ t: 'close', id, db: this.#dbId }));
    this.#reader.db.close();
    this.#inline?.db.close();
  }
}

/** Applies pending migrations, each in its own transaction with its version bump. */
function migrate(db: BetterSqlite3.Database, kysely: Kysely<Database>): void {
  const exec = new SqliteExecutor(db);
  const hasMeta =
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
  let current = 0;
  if (hasMeta) {
    const row = exec.allSync<{ value: string }>(readSchemaVersion(kysely))[0];
    current = row ? Number(row.value) : 0;
  }
  refuseNewerSchema(current);
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      for (const stmt of migration.statements(kysely)) exec.runSync(stmt);
      exec.runSync(writeSchemaVersion(kysely, migration.version));
    }).immediate();
  }
}
