/**
 * Opens the configured store: the one place that picks SQLite or PostgreSQL, for the server
 * and for every CLI command that acts on the data (they all go through createServer).
 * PostgreSQL is loaded only when configured, so SQLite users never load `pg`.
 */
import type { Store } from '@countersign/core';
import { type ChangeChannel, type IdSource, SqliteStore } from '@countersign/store';
import type { ServerConfig } from './config.js';

export interface OpenedStore {
  readonly store: Store;
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data is, for logs: never a password. */
  readonly description: string;
  /** Cross-instance change notifications (PostgreSQL), or null. */
  readonly changes: ChangeChannel | null;
  /** Things an operator must hear at start (e.g. commits that are not durable). */
  readonly warnings: readonly string[];
  /** Pool and retry counters (PostgreSQL), for /metrics. */
  readonly stats:
    | (() => { poolTotal: number; poolIdle: number; poolWaiting: number; retries: number })
    | null;
}

/** `postgres://user:secret@host/db` → `postgres://user@host/db`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
}

export async function openStore(
  config: ServerConfig,
  ids: IdSource,
  sqliteWriter: 'inline' | 'thread' = 'thread',
): Promise<OpenedStore> {
  const pgConfig = config.postgres;
  if (!pgConfig) {
    return {
      store: SqliteStore.open({ file: config.sqliteFile, ids, writer: sqliteWriter }),
      kind: 'sqlite',
      description: `sqlite ${config.sqliteFile}`,
      changes: null,
      warnings: [],
      stats: null,
    };
  }
  const { PostgresStore } = await import('@countersign/store/postgres');
  const store = await PostgresStore.open({
    url: pgConfig.url,
    ids,
    poolMax: pgConfig.poolMax,
    acquireTimeoutMs: pgConfig.acquireTimeoutMs,
    statementTimeoutMs: pgConfig.statementTimeoutMs,
  });
  const settings = await store.settings().catch(() => null);
  const warnings: string[] = [];
  // An acknowledged decision must survive a crash of the database (THREATS.md H5).
  if (settings && !['on', 'remote_write', 'remote_apply'].includes(settings.synchronousCommit)) {
    warnings.push(
      `PostgreSQL synchronous_commit is ${settings.synchronousCommit}: acknowledged decisions and audit events can be lost in a crash`,
    );
  }
  return {
    store,
    kind: 'postgres',
    description: `postgres ${redactUrl(pgConfig.url)} (from ${pgConfig.source})`,
    changes: store.changes(),
    warnings,
    stats: () => store.stats(),
  };
}
