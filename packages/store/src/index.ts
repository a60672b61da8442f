export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export type { Database } from './schema.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
