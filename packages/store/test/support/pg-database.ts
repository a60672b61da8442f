/**
 * A PostgreSQL database of its own for one test run: random name, created on the machine's
 * server (`COUNTERSIGN_TEST_PG_ADMIN_URL`, default postgres://postgres@127.0.0.1:5432/postgres),
 * dropped afterwards (WITH (FORCE): connections a failed test left open do not keep it alive).
 * Names carry their creation time, so databases of a run that was killed are swept an hour later.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const ADMIN_URL =
  process.env.COUNTERSIGN_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'cs_test_';
const STALE_SECONDS = 3600;

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Drops this prefix's databases older than an hour (a killed run cannot drop its own). */
async function sweep(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ datname: string }>(
    'select datname from pg_database where datname like $1',
    [`${PREFIX}%`],
  );
  const now = Math.floor(Date.now() / 1000);
  for (const { datname } of rows) {
    const m = /^cs_test_(\d+)_[0-9a-f]+$/.exec(datname);
    if (m && now - Number(m[1]) > STALE_SECONDS) {
      await client.query(`drop database if exists ${client.escapeIdentifier(datname)} with (force)`);
    }
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${PREFIX}${Math.floor(Date.now() / 1000)}_${randomBytes(6).toString('hex')}`;
  await admin(async (client) => {
    await sweep(client);
    await client.query(`create database ${client.escapeIdentifier(name)}`);
  });
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin((client) =>
        client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`),
      );
    },
  };
}
