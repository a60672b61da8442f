/**
 * The messages between a SqliteStore and its writer thread. The main thread schedules
 * (which units go in which group commit); the writer executes, in order, on the one write
 * connection. Errors cross the thread boundary as data and are rebuilt with their codes.
 */
import { CountersignError, type ErrorCode, type StoreUnitName } from '@countersign/core';
import { UniqueViolation } from './executor.js';

/**
 * Every message names the database (`db`): one writer thread serves every SqliteStore of the
 * process, each with its own connection (a process normally has one; tests have many).
 */
export type ToWriter =
  /** Opens the write connection for `db`; answered with its pragmas. */
  | {
      readonly t: 'open';
      readonly id: number;
      readonly db: number;
      readonly file: string;
      readonly busyTimeoutMs: number;
    }
  /** BEGIN IMMEDIATE: the start of a group commit. */
  | { readonly t: 'begin'; readonly db: number }
  /** A named unit, in its own savepoint; answered with `done`. */
  | {
      readonly t: 'unit';
      readonly id: number;
      readonly db: number;
      readonly name: StoreUnitName;
      readonly args: unknown;
    }
  /**
   * A whole group commit of named units in one message: BEGIN, each unit in its savepoint,
   * COMMIT; answered once, after the COMMIT, with every unit's outcome. Self-contained, so the
   * main thread may send the next group before this one is answered (it runs after this COMMIT).
   */
  | {
      readonly t: 'group';
      readonly id: number;
      readonly db: number;
      readonly units: ReadonlyArray<{ readonly name: StoreUnitName; readonly args: unknown }>;
    }
  /** A closure unit running on the main thread opens its savepoint... */
  | { readonly t: 'savepoint'; readonly db: number }
  /** ...calls StoreTx methods one at a time (each answered with `done`)... */
  | {
      readonly t: 'call';
      readonly id: number;
      readonly db: number;
      readonly method: string;
      readonly args: readonly unknown[];
    }
  /** ...and ends it, kept or rolled back. */
  | { readonly t: 'release'; readonly db: number }
  | { readonly t: 'rollback'; readonly db: number }
  /** COMMIT (one fsync for the whole group); answered with `done`. */
  | { readonly t: 'commit'; readonly id: number; readonly db: number }
  /** Closes `db`'s connection; answered with `done`. */
  | { readonly t: 'close'; readonly id: number; readonly db: number };

export type FromWriter =
  | { readonly t: 'done'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly t: 'done'; readonly id: number; readonly ok: false; readonly error: WireError };

/** One unit's outcome inside a group's answer. */
export type WireOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WireError };

export type WireError =
  | {
      readonly kind: 'countersign';
      readonly code: ErrorCode;
      readonly message: string;
      readonly details?: Readonly<Record<string, unknown>>;
    }
  | { readonly kind: 'unique'; readonly message: string }
  | { readonly kind: 'other'; readonly message: string; readonly code?: string };

export function encodeError(error: unknown): WireError {
  if (error instanceof CountersignError) {
    return {
      kind: 'countersign',
      code: error.code as ErrorCode,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
    };
  }
  if (error instanceof UniqueViolation) return { kind: 'unique', message: error.detail };
  const code = (error as { code?: unknown } | null)?.code;
  return {
    kind: 'other',
    message: error instanceof Error ? error.message : String(error),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

export function decodeError(wire: WireError): Error {
  switch (wire.kind) {
    case 'countersign':
      return new CountersignError(
        wire.code,
        wire.message,
        wire.details ? { details: { ...wire.details } } : {},
      );
    case 'unique':
      return new UniqueViolation(wire.message);
    case 'other':
      return Object.assign(new Error(wire.message), wire.code ? { code: wire.code } : {});
    default: {
      const never: never = wire;
      return new Error(`unknown error shape ${JSON.stringify(never)}`);
    }
  }
}
