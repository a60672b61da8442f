/**
 * The SQLite writer thread: owns the one write connection, executes what the main thread
 * schedules, strictly in order. Named units run here whole (no round trip per statement);
 * closure units send their StoreTx calls one at a time. Statements, the audit chain's
 * hashing and each group commit's fsync all happen here, so the event loop never waits on
 * the disk. Durability is unchanged: WAL, synchronous=FULL, COMMIT fsyncs before anyone is
 * answered.
 */
import { createHash } from 'node:crypto';
import { type MessagePort, parentPort } from 'node:worker_threads';
import { newRowId, STORE_UNITS, type StoreTx, type StoreUnitName, useSha256 } from '@countersign/core';
import type BetterSqlite3 from 'better-sqlite3';
import { failpoint } from './failpoint.js';
import { SqlTx } from './sql-store.js';
import { openWriteConnection, SqliteExecutor, sqliteCompiler } from './sqlite-connection.js';
import { encodeError, type FromWriter, type ToWriter, type WireOutcome } from './writer-protocol.js';

const ids = { next: (prefix: string) => newRowId(prefix, Date.now()) };
const compiler = sqliteCompiler();

/** One database's write connection on the writer thread. */
export class Writer {
  readonly #db: BetterSqlite3.Database;
  readonly #tx: SqlTx;
  readonly #send: (message: FromWriter) => void;
  /** Whether the current group commit holds a decision (where the store.* failpoints apply). */
  #groupHasDecision = false;
  /** Why the current group commit cannot proceed (BEGIN failed), or null. */
  #batchError: unknown = null;

  /** Transaction control, prepared once: parsing them on every unit was a measurable cost. */
  readonly #sql: Record<
    'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo',
    BetterSqlite3.Statement
  >;

  constructor(file: string, busyTimeoutMs: number, send: (message: FromWriter) => void) {
    this.#db = openWriteConnection(file, busyTimeoutMs);
    const prepare = (text: string) => this.#db.prepare(text);
    this.#sql = {
      begin: prepare('BEGIN IMMEDIATE'),
      commit: prepare('COMMIT'),
      rollback: prepare('ROLLBACK'),
      savepoint: prepare('SAVEPOINT unit'),
      release: prepare('RELEASE unit'),
      rollbackTo: prepare('ROLLBACK TO unit'),
    };
    this.#tx = new SqlTx(compiler, new SqliteExecutor(this.#db), ids);
    this.#send = send;
  }

  durability(): { journalMode: string; synchronous: number } {
    return {
      journalMode: String(this.#db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.#db.pragma('synchronous', { simple: true })),
    };
  }

  #ok(id: number, value: unknown): void {
    this.#send({ t: 'done', id, ok: true, value });
  }

  #fail(id: number, error: unknown): void {
    this.#send({ t: 'done', id, ok: false, error: encodeError(error) });
  }

  /** Undoes the open savepoint; the unit's audit events are gone, so the head is read again. */
  #rollbackUnit(): void {
    try {
      this.#sql.rollbackTo.run();
      this.#sql.release.run();
    } catch (error) {
      // The transaction itself is gone (I/O error): COMMIT will fail and say so.
      this.#batchError ??= error;
    }
    this.#tx.forgetAuditHead();
  }

  /** A step of a closure unit, answered to no one: its failure fails the rest of the group. */
  #step(statement: BetterSqlite3.Statement): void {
    if (this.#batchError !== null) return;
    try {
      statement.run();
    } catch (error) {
      this.#batchError = error;
    }
  }

  async handle(m: Exclude<ToWriter, { t: 'open' }>): Promise<void> {
    const db = this.#db;
    switch (m.t) {
      case 'begin':
        this.#batchError = null;
        this.#groupHasDecision = false;
        try {
          this.#sql.begin.run();
        } catch (error) {
          this.#batchError = error;
        }
        // The write lock is ours until COMMIT: the head read once is carried across units.
        this.#tx.forgetAuditHead();
        return;
      case 'unit': {
        if (m.name === 'commitAccessRequest') this.#groupHasDecision = true;
        if (this.#batchError !== null) return this.#fail(m.id, this.#batchError);
        const unit = STORE_UNITS[m.name as StoreUnitName] as
          | ((tx: StoreTx, args: unknown) => Promise<unknown>)
          | undefined;
        if (!unit) return this.#fail(m.id, new Error(`no store unit named ${String(m.name)}`));
        try {
          this.#sql.savepoint.run();
        } catch (error) {
          return this.#fail(m.id, error);
        }
        try {
          const value = await unit(this.#tx, m.args);
          this.#sql.release.run();
          return this.#ok(m.id, value);
        } catch (error) {
          this.#rollbackUnit();
          return this.#fail(m.id, error);
        }
      }
      case 'group':
        return this.#group(m);
      case 'savepoint':
        return this.#step(this.#sql.savepoint);
      case 'call': {
        if (this.#batchError !== null) return this.#fail(m.id, this.#batchError);
        const method = (this.#tx as unknown as Record<string, unknown>)[m.method];
        if (typeof method !== 'function' || m.method.startsWith('#') || m.method === 'constructor') {
          return this.#fail(m.id, new Error(`no StoreTx method ${m.method}`));
        }
        try {
          return this.#ok(
            m.id,
            await (method as (...a: unknown[]) => Promise<unknown>).apply(this.#tx, [...m.args]),
          );
        } catch (error) {
          return this.#fail(m.id, error);
        }
      }
      case 'release':
        return this.#step(this.#sql.release);
      case 'rollback':
        if (this.#batchError === null) this.#rollbackUnit();
        return;
      case 'commit': {
        if (this.#batchError !== null) {
          if (db.inTransaction) this.#abort();
          return this.#fail(m.id, this.#batchError);
        }
        try {
          if (this.#groupHasDecision) failpoint('store.before-commit');
          this.#sql.commit.run();
          if (this.#groupHasDecision) failpoint('store.after-commit');
          return this.#ok(m.id, null);
        } catch (error) {
          // COMMIT failed (busy, disk full, I/O): nothing in this group happened.
          this.#abort();
          return this.#fail(m.id, error);
        }
      }
      case 'close':
        if (db.inTransaction) this.#abort();
        db.close();
        return this.#ok(m.id, null);
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  /** A whole group commit of named units: one message in, one answer out, after the COMMIT. */
  async #group(m: Extract<ToWriter, { t: 'group' }>): Promise<void> {
    this.#batchError = null;
    this.#groupHasDecision = m.units.some((u) => u.name === 'commitAccessRequest');
    try {
      this.#sql.begin.run();
    } catch (error) {
      return this.#fail(m.id, error);
    }
    this.#tx.forgetAuditHead();
    const outcomes: WireOutcome[] = [];
    for (const { name, args } of m.units) {
      const unit = STORE_UNITS[name as StoreUnitName] as
        | ((tx: StoreTx, args: unknown) => Promise<unknown>)
        | undefined;
      if (!unit) {
        outcomes.push({ ok: false, error: encodeError(new Error(`no store unit named ${String(name)}`)) });
        continue;
      }
      try {
        this.#sql.savepoint.run();
      } catch (error) {
        this.#batchError ??= error;
        break;
      }
      try {
        const value = await unit(this.#tx, args);
        this.#sql.release.run();
        outcomes.push({ ok: true, value });
      } catch (error) {
        this.#rollbackUnit();
        outcomes.push({ ok: false, error: encodeError(error) });
        // ROLLBACK TO failed: SQLite already rolled the whole transaction back (disk full, I/O).
        // Another SAVEPOINT would silently open a new transaction and its RELEASE commit it.
        if (this.#batchError !== null) break;
      }
    }
    if (this.#batchError !== null) {
      this.#abort();
      return this.#fail(m.id, this.#batchError);
    }
    try {
      if (this.#groupHasDecision) failpoint('store.before-commit');
      this.#sql.commit.run();
      if (this.#groupHasDecision) failpoint('store.after-commit');
    } catch (error) {
      // COMMIT failed (busy, disk full, I/O): nothing in this group happened.
      this.#abort();
      return this.#fail(m.id, error);
    }
    return this.#ok(m.id, outcomes);
  }

  #abort(): void {
    try {
      this.#sql.rollback.run();
    } catch {
      // The connection is already out of the transaction.
    }
    this.#tx.forgetAuditHead();
  }
}

/** The thread's entry: one Writer per database, messages handled one after another, in arrival order. */
export function runWriterThread(port: MessagePort = parentPort!): void {
  // This thread has its own copy of core: the audit chain's hashing happens here, so it gets
  // node:crypto's SHA-256 too (checked against the portable one's known answers).
  useSha256((text) => createHash('sha256').update(text, 'utf8').digest('hex'));
  const send = (message: FromWriter) => port.postMessage(message);
  const writers = new Map<number, Writer>();
  const handle = async (m: ToWriter): Promise<void> => {
    if (m.t === 'open') {
      try {
        const writer = new Writer(m.file, m.busyTimeoutMs, send);
        writers.set(m.db, writer);
        send({ t: 'done', id: m.id, ok: true, value: writer.durability() });
      } catch (error) {
        send({ t: 'done', id: m.id, ok: false, error: encodeError(error) });
      }
      return;
    }
    const writer = writers.get(m.db);
    if (!writer) {
      // Its open failed: every answered message fails, closing is a no-op.
      if ('id' in m) {
        const error = m.t === 'close' ? null : new Error(`database ${m.db} is not open on the writer thread`);
        send(
          error
            ? { t: 'done', id: m.id, ok: false, error: encodeError(error) }
            : { t: 'done', id: m.id, ok: true, value: null },
        );
      }
      return;
    }
    await writer.handle(m);
    if (m.t === 'close') writers.delete(m.db);
  };
  // One group commit at a time: once a database's BEGIN is handled, only its messages are
  // handled until its COMMIT, the others wait in arrival order. Two stores on one file (two
  // instances in one process) would otherwise block each other's BEGIN on this one thread.
  const queue: ToWriter[] = [];
  let owner: number | null = null;
  let draining = false;
  const next = (): ToWriter | undefined => {
    const i = owner === null ? 0 : queue.findIndex((m) => m.db === owner);
    return i < 0 ? undefined : queue.splice(i, 1)[0];
  };
  const drain = async () => {
    draining = true;
    for (let m = next(); m !== undefined; m = next()) {
      if (m.t === 'begin') owner = m.db;
      await handle(m);
      if (m.t === 'commit') owner = null;
    }
    draining = false;
  };
  port.on('message', (message: ToWriter) => {
    queue.push(message);
    if (!draining) void drain();
  });
}
