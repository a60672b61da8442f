/** `@countersign/store/postgres`: the PostgreSQL adapter, kept apart so SQLite users never load `pg`. */
export {
  CHANGE_CHANNEL,
  PostgresStore,
  type PostgresStoreOptions,
  type PostgresStoreStats,
  sqlState,
} from './postgres.js';
