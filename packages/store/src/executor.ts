import type { CompiledQuery } from 'kysely';

/** A unique-constraint violation, translated from the driver's own error. */
export class UniqueViolation extends Error {
  constructor(
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`unique constraint violated: ${detail}`, options);
    this.name = 'UniqueViolation';
  }
}

/** Runs compiled queries on one connection. Adapters translate unique violations. */
export interface Executor {
  all<R>(query: CompiledQuery): Promise<R[]>;
  run(query: CompiledQuery): Promise<{ changes: number }>;
}
