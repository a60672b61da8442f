import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../src/migrations.js';
import type { Database } from '../src/schema.js';
import { postgresCompiler, sqliteCompiler } from './support/compilers.js';

const ddl = (db: Kysely<Database>) =>
  Object.fromEntries(
    MIGRATIONS.map((m) => [
      m.version,
      createHash('sha256')
        .update(JSON.stringify(m.statements(db).map((q) => [q.sql, q.parameters])))
        .digest('hex')
        .slice(0, 16),
    ]),
  );

// A migration a database has already run is never run again there: editing it would leave
// old and new databases with different schemas. Change the schema with a new migration; a
// digest here changes only if an applied migration (or Kysely's DDL compiler) did.
// Both dialects compile these migrations to the same text, so one table of digests serves both.
const RELEASED = {
  1: 'f2b1e986c1da3438',
  2: '38387daf07bec996',
  3: '3d676f66d96d24cf',
  4: '699a0880462c0441',
  5: '21297400d6be3f4d',
  6: '42599a3106154b0c',
};

describe('migrations already released compile to the same DDL', () => {
  it.each([
    ['sqlite', sqliteCompiler()],
    ['postgres', postgresCompiler()],
  ])('%s', (_name, db) => {
    expect(ddl(db)).toEqual(RELEASED);
  });
});
