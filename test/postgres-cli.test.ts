/**
 * Choosing PostgreSQL: `store.postgres` in countersign.yaml or DATABASE_URL, strictly
 * validated; every CLI command that acts on data (agent, reviewer, audit) and `serve` use the
 * configured store through one function (openStore), never the SQLite file.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@countersign/server';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initHome } from '../packages/cli/src/commands/init.js';
import { createTestDatabase, type TestDatabase } from '../packages/store/test/support/pg-database.js';
import { cli, type Instance, startInstance } from './support/instances.js';

const URL_A = 'postgres://countersign:secret@db.internal:5432/countersign';

describe('store configuration', () => {
  let home: string;
  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'countersign-pgconf-'));
    await initHome({ home, dev: true });
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  const withStore = (store: string) => {
    const file = join(home, 'countersign.yaml');
    const text = `dev: true\n${store}\n`;
    writeFileSync(file, text);
  };

  it('SQLite by default; DATABASE_URL selects PostgreSQL, even over the store.sqlite that init writes', () => {
    withStore('store:\n  sqlite:\n    file: countersign.db');
    expect(loadConfig({ home, port: 1, env: {} }).postgres).toBeNull();
    const c = loadConfig({ home, port: 1, env: { DATABASE_URL: URL_A } });
    expect(c.postgres).toMatchObject({
      url: URL_A,
      source: 'DATABASE_URL',
      poolMax: 10,
      acquireTimeoutMs: 2000,
    });
  });

  it('store.postgres.url wins over DATABASE_URL; pool settings are read; sqlite and postgres together are refused', () => {
    withStore(
      `store:\n  postgres:\n    url: ${URL_A}\n    pool_max: 4\n    acquire_timeout: 1s\n    statement_timeout: 3s\nevents:\n  poll_interval: 2s`,
    );
    const c = loadConfig({ home, port: 1, env: { DATABASE_URL: 'postgres://other/db' } });
    expect(c.postgres).toEqual({
      url: URL_A,
      source: 'countersign.yaml',
      poolMax: 4,
      acquireTimeoutMs: 1000,
      statementTimeoutMs: 3000,
    });
    expect(c.eventsPollMs).toBe(2000);
    withStore(`store:\n  sqlite:\n    file: x.db\n  postgres:\n    url: ${URL_A}`);
    expect(() => loadConfig({ home, port: 1, env: {} })).toThrow(/choose one store/);
  });

  it('a store.postgres without a URL needs DATABASE_URL; malformed URLs and unknown keys are refused', () => {
    withStore('store:\n  postgres:\n    pool_max: 3');
    expect(() => loadConfig({ home, port: 1, env: {} })).toThrow(/needs a url, or DATABASE_URL/);
    expect(loadConfig({ home, port: 1, env: { DATABASE_URL: URL_A } }).postgres?.poolMax).toBe(3);
    expect(() => loadConfig({ home, port: 1, env: { DATABASE_URL: 'mysql://x/y' } })).toThrow(
      /DATABASE_URL must be a postgres/,
    );
    withStore('store:\n  postgres:\n    url: https://example.com/');
    expect(() => loadConfig({ home, port: 1, env: {} })).toThrow(/store.postgres.url/);
    withStore(`store:\n  postgres:\n    url: ${URL_A}\n    sslmode: off`);
    expect(() => loadConfig({ home, port: 1, env: {} })).toThrow(/sslmode/);
  });
});

describe('the CLI and the server on PostgreSQL (DATABASE_URL)', () => {
  let home: string;
  let db: TestDatabase;
  let server: Instance | null = null;
  const env = () => ({ DATABASE_URL: db.url });
  async function query<R extends pg.QueryResultRow>(text: string) {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query<R>(text)).rows;
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    home = mkdtempSync(join(tmpdir(), 'countersign-pgcli-'));
    await initHome({ home, dev: true });
  });
  afterAll(async () => {
    try {
      await server?.stop();
    } finally {
      rmSync(home, { recursive: true, force: true });
      await db.drop();
    }
  });

  it('agent, reviewer and audit commands act on the database, and no SQLite file appears', async () => {
    const add = cli(home, ['agent', 'add', 'pg-bot', '--owner', 'data'], env());
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(cli(home, ['agent', 'list'], env()).stdout).toMatch(/active\s+pg-bot\s+owner=data/);
    const invite = cli(home, ['reviewer', 'invite', 'rita@acme.dev', '--group', 'billing-oncall'], env());
    expect(invite.code).toBe(0);
    const suspend = cli(home, ['agent', 'suspend', 'pg-bot', '--reason', 'test'], env());
    expect(suspend.code).toBe(0);
    const verify = cli(home, ['audit', 'verify'], env());
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/audit chain intact: 3 events/);
    expect(
      (await query<{ type: string }>('select type from audit_events order by seq')).map((r) => r.type),
    ).toEqual(['agent.added', 'reviewer.invited', 'agent.suspended']);
    expect(await query('select email from invites')).toEqual([{ email: 'rita@acme.dev' }]);
    expect(existsSync(join(home, 'countersign.db'))).toBe(false);
    // Without DATABASE_URL the same directory is the (empty) SQLite store.
    expect(cli(home, ['agent', 'list'], { DATABASE_URL: '' }).stdout).toMatch(/no agents yet/);
  }, 180_000); // six CLI processes: slow on a busy 2-core machine

  it('H9 the CLI refuses a database whose schema is newer than it knows', async () => {
    const [row] = await query<{ value: string }>("select value from meta where key = 'schema_version'");
    const value = row!.value;
    await query(`update meta set value = '${Number(value) + 1}' where key = 'schema_version'`);
    try {
      const r = cli(home, ['audit', 'verify'], env());
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/CS_STORE_UNAVAILABLE.*newer than this Countersign/);
    } finally {
      await query(`update meta set value = '${value}' where key = 'schema_version'`);
    }
  });

  it('serve runs on the database: /healthz names the store and the listener, and the password stays out of logs', async () => {
    server = await startInstance({ name: 'pg-serve', home, issuer: 'http://localhost:8787', env: env() });
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as Record<string, any>;
    expect(health).toMatchObject({ status: 'ok', store: 'postgres', checks: { store: 'ok' } });
    await expect
      .poll(async () => ((await (await fetch(`${server!.url}/healthz`)).json()) as any).checks.events, {
        timeout: 5000,
      })
      .toMatch(/^listening/);
    expect(server.log()).toMatch(/"store":"postgres postgres:\/\/postgres@127\.0\.0\.1:5432\/cs_test_/);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/countersign_store_pool_connections\{state="total"\} \d+/);
    expect(metrics).toMatch(/countersign_events_listening 1/);
    expect(metrics).toMatch(/countersign_store_write_failing 0/);
  });
});
