import { createHash } from 'node:crypto';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../src/migrations.js';
import type { Database } from '../src/schema.js';
import { sqliteCompiler } from '../src/sqlite-connection.js';

const postgres = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

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
describe('migrations already released compile to the same DDL', () => {
  it('sqlite', () => {
    expect(ddl(sqliteCompiler())).toMatchInlineSnapshot(`
      {
        "1": "f2b1e986c1da3438",
        "2": "38387daf07bec996",
        "3": "3d676f66d96d24cf",
        "4": "699a0880462c0441",
        "5": "21297400d6be3f4d",
        "6": "42599a3106154b0c",
      }
    `);
  });
  it('postgres', () => {
    expect(ddl(postgres)).toMatchInlineSnapshot(`
      {
        "1": "f2b1e986c1da3438",
        "2": "38387daf07bec996",
        "3": "3d676f66d96d24cf",
        "4": "699a0880462c0441",
        "5": "21297400d6be3f4d",
        "6": "42599a3106154b0c",
      }
    `);
  });
});
