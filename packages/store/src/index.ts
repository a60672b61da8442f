export type { ChangeChannel, ChangeChannelStatus } from './change-channel.js';
export { FAILPOINTS, type FailpointName, failpoint } from './failpoint.js';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export type { Database } from './schema.js';
export type { IdSource } from './sql-store.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
