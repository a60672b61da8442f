/**
 * PostgreSQL-specific guarantees: migrations under a lock and the schema guard (H9), bounded
 * waits that fail closed (E9), deadlock retries and READ COMMITTED whatever the database says
 * (H6), one audit chain across instances, and the LISTEN/NOTIFY change channel.
 */
import { verifyAuditChain } from '@countersign/core';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../src/index.js';
import { PostgresStore, type PostgresStoreOptions } from '../src/postgres-entry.js';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './support/pg-database.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

let n = 0;
const ids = { next: (p: string) => `${p}_${process.pid}_${++n}` };
const event = (i: number) => ({
  type: 'test.event',
  actor: { type: 'system' as const, id: 't' },
  data: { i },
});

describe('PostgreSQL adapter', () => {
  let db: TestDatabase;
  const open: PostgresStore[] = [];
  const proxies: TcpProxy[] = [];
  async function openStore(options: Partial<PostgresStoreOptions> = {}): Promise<PostgresStore> {
    const store = await PostgresStore.open({ url: db.url, ids, poolMax: 4, ...options });
    open.push(store);
    return store;
  }
  async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    values: unknown[] = [],
  ) {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }
  async function events(store: PostgresStore) {
    const out = [];
    for await (const e of store.auditEvents()) out.push(e);
    return out;
  }

  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    try {
      for (const s of open.splice(0)) await s.close().catch(() => undefined);
      for (const p of proxies.splice(0)) await p.close();
    } finally {
      await db.drop();
    }
  });

  it('H9 instances starting together migrate once, under the lock; a newer schema is refused', async () => {
    const stores = await Promise.all([openStore(), openStore(), openStore()]);
    expect(stores).toHaveLength(3);
    expect(await sql("select value from meta where key = 'schema_version'")).toEqual([
      { value: String(SCHEMA_VERSION) },
    ]);
    for (const s of open.splice(0)) await s.close();
    await sql("update meta set value = $1 where key = 'schema_version'", [String(SCHEMA_VERSION + 1)]);
    await expect(openStore()).rejects.toMatchObject({
      code: 'CS_STORE_UNAVAILABLE',
      message: expect.stringMatching(/newer than this Countersign/),
    });
  });

  it('H6 units run at READ COMMITTED even when the database defaults to SERIALIZABLE', async () => {
    await sql(
      `alter database ${pg.escapeIdentifier(db.name)} set default_transaction_isolation = 'serializable'`,
    );
    const store = await openStore({ poolMax: 8, acquireTimeoutMs: 30_000 });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.transaction((tx) => tx.appendAudit(event(i), i))),
    );
    const chain = await events(store);
    expect(verifyAuditChain(chain)).toMatchObject({ ok: true, count: 100 });
    expect(store.stats().retries).toBe(0);
  });

  it('H6 a unit that loses a deadlock is run again from the start, and both commit', async () => {
    const store = await openStore();
    await store.transaction(async (tx) => {
      for (const id of ['a1', 'a2']) {
        await tx.insertAgent({
          id,
          owner: 'o',
          boundary: 'b',
          environment: 'e',
          trustTier: 't',
          status: 'active',
          publicJwk: {},
          jwkThumbprint: `tp-${id}`,
          createdAt: 1,
          expiresAt: null,
          lastSeenAt: null,
        });
      }
    });
    // Each unit locks one agent row, waits until the other holds its row, then wants the other.
    let arrived = 0;
    let release: () => void = () => undefined;
    const both = new Promise<void>((ok) => {
      release = ok;
    });
    const runs = { a: 0, b: 0 };
    const unit = (name: 'a' | 'b', first: string, second: string) =>
      store.transaction(async (tx) => {
        runs[name]++;
        await tx.setAgentStatus(first, 'active', 'active');
        if (++arrived === 2) release();
        await both;
        await tx.setAgentStatus(second, 'active', 'active');
        await tx.appendAudit(event(runs[name]), 1);
        return name;
      });
    const results = await Promise.all([unit('a', 'a1', 'a2'), unit('b', 'a2', 'a1')]);
    expect(results).toEqual(['a', 'b']);
    expect(store.stats().retries).toBe(1);
    expect(runs.a + runs.b).toBe(3);
    expect(verifyAuditChain(await events(store))).toMatchObject({ ok: true, count: 2 });
  });

  it('I3 three instances appending at once keep one linear chain (and the rate is printed)', async () => {
    const stores = await Promise.all(
      [1, 2, 3].map(() => openStore({ poolMax: 4, acquireTimeoutMs: 30_000 })),
    );
    const perInstance = 150;
    const started = performance.now();
    await Promise.all(
      stores.flatMap((store, s) =>
        Array.from({ length: perInstance }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.appendAudit(event(s * 1000 + i), i);
            await tx.appendAudit(event(s * 1000 + i), i);
          }),
        ),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const chain = await events(stores[0]!);
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 900 }, (_, i) => i + 1));
    expect(verifyAuditChain(chain)).toMatchObject({ ok: true, count: 900 });
    console.log(
      `[figure] audit chain on PostgreSQL, 3 instances: ${(450 / seconds).toFixed(0)} units/s, ${(900 / seconds).toFixed(0)} events/s (2 events per unit, one commit each)`,
    );
  });

  it('E9 an exhausted pool gives a fast CS_STORE_UNAVAILABLE with no effect, and recovers', async () => {
    const store = await openStore({ poolMax: 2, acquireTimeoutMs: 300 });
    let release: () => void = () => undefined;
    const hold = new Promise<void>((ok) => {
      release = ok;
    });
    // Two units hold both connections.
    const holders = [1, 2].map(() =>
      store.transaction(async (tx) => {
        await tx.getAgent('x');
        await hold;
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    await expect(store.transaction((tx) => tx.completeTask('a', 'blocked', 1))).rejects.toMatchObject({
      code: 'CS_STORE_UNAVAILABLE',
      message: expect.stringMatching(/no database connection within 300 ms/),
    });
    const waited = performance.now() - started;
    expect(waited).toBeLessThan(1500);
    expect(store.writeHealth()?.message).toMatch(/timeout/);
    release();
    await Promise.all(holders);
    expect(await store.read((tx) => tx.isTaskCompleted('a', 'blocked'))).toBe(false);
    await store.transaction((tx) => tx.completeTask('a', 'later', 1));
    expect(store.writeHealth()).toBeNull();
  });

  it('E9 a chain lock held elsewhere (a stuck instance) fails the unit within the statement timeout, no effect', async () => {
    const store = await openStore({ statementTimeoutMs: 400 });
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock($1, 1)', [0x43534e31]);
      const started = performance.now();
      await expect(
        store.transaction(async (tx) => {
          await tx.completeTask('a', 'stuck', 1);
          await tx.appendAudit(event(1), 1);
        }),
      ).rejects.toMatchObject({ code: 'CS_AUDIT_WRITE_FAILED' });
      expect(performance.now() - started).toBeLessThan(2000);
      expect(store.writeHealth()?.message).toMatch(/statement timeout.*57014/);
      expect(await store.read((tx) => tx.isTaskCompleted('a', 'stuck'))).toBe(false);
    } finally {
      await holder.end();
    }
    await store.transaction((tx) => tx.appendAudit(event(2), 2));
    expect(store.writeHealth()).toBeNull();
  });

  it('E9 a database that stops answering fails units within the bound and the store recovers when it answers again', async () => {
    const proxy = await startTcpProxy('127.0.0.1', 5432);
    proxies.push(proxy);
    const store = await PostgresStore.open({
      url: proxy.url(db.url),
      ids,
      poolMax: 2,
      acquireTimeoutMs: 500,
      statementTimeoutMs: 500,
    });
    open.push(store);
    await store.transaction((tx) => tx.completeTask('a', 'before', 1));
    proxy.mode = 'stall';
    const started = performance.now();
    await expect(store.transaction((tx) => tx.completeTask('a', 'during', 1))).rejects.toMatchObject({
      code: 'CS_STORE_UNAVAILABLE',
    });
    // statement timeout + 1 s client-side bound, at most.
    expect(performance.now() - started).toBeLessThan(2500);
    expect(store.writeHealth()).not.toBeNull();
    proxy.mode = 'reset';
    await expect(store.transaction((tx) => tx.completeTask('a', 'down', 1))).rejects.toMatchObject({
      code: 'CS_STORE_UNAVAILABLE',
    });
    proxy.mode = 'pass';
    await store.transaction((tx) => tx.completeTask('a', 'after', 1));
    expect(store.writeHealth()).toBeNull();
    const done = await sql<{ task_id: string }>('select task_id from tasks order by task_id');
    expect(done.map((r) => r.task_id)).toEqual(['after', 'before']);
  });

  it('E9 a connection killed inside a unit fails that unit only; the pool replaces it', async () => {
    const store = await openStore({ poolMax: 1 });
    await expect(
      store.transaction(async (tx) => {
        await tx.completeTask('a', 'killed', 1);
        await sql(
          "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'countersign' and state = 'idle in transaction'",
        );
        await tx.appendAudit(event(1), 1);
      }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^CS_(STORE_UNAVAILABLE|AUDIT_WRITE_FAILED)$/) });
    expect(store.writeHealth()).not.toBeNull();
    await store.transaction((tx) => tx.completeTask('a', 'next', 1));
    expect(await store.read((tx) => tx.isTaskCompleted('a', 'killed'))).toBe(false);
    expect(await store.read((tx) => tx.isTaskCompleted('a', 'next'))).toBe(true);
  });

  it('R6 a read-only database fails units closed with the reason, and the store recovers once it is writable', async () => {
    await (await openStore()).close();
    open.splice(0);
    // From the admin database: once this one is read-only, it cannot change its own default.
    const readOnly = async (on: boolean) => {
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      try {
        await admin.query(
          `alter database ${pg.escapeIdentifier(db.name)} set default_transaction_read_only = ${on ? 'on' : 'off'}`,
        );
      } finally {
        await admin.end();
      }
    };
    await readOnly(true);
    const store = await openStore({ poolMax: 2 });
    await expect(store.transaction((tx) => tx.completeTask('a', 'ro', 1))).rejects.toMatchObject({
      code: 'CS_STORE_UNAVAILABLE',
    });
    expect(store.writeHealth()?.message).toMatch(/read-only transaction.*25006/);
    await readOnly(false);
    const started = performance.now();
    await store.transaction((tx) => tx.completeTask('a', 'rw', 1));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(store.writeHealth()).toBeNull();
    expect(await store.read((tx) => tx.isTaskCompleted('a', 'ro'))).toBe(false);
  });

  it('reports the durability settings it runs with', async () => {
    const store = await openStore();
    expect(await store.settings()).toMatchObject({ synchronousCommit: 'on', isolation: 'read committed' });
  });

  it('C2 the change channel carries ids between instances and comes back after its connection is killed', async () => {
    const a = await openStore();
    const b = await openStore({ applicationName: 'countersign-b' });
    const seen: string[] = [];
    const states: boolean[] = [];
    let listening: () => void = () => undefined;
    const waitListening = () =>
      new Promise<void>((ok) => {
        listening = ok;
      });
    let first = waitListening();
    b.changes().subscribe(
      (ids) => seen.push(...ids),
      (s) => {
        states.push(s.listening);
        if (s.listening) listening();
      },
    );
    await first;
    a.changes().publish('req_1');
    a.changes().publish('req_2');
    await expect.poll(() => seen, { timeout: 2000, interval: 10 }).toEqual(['req_1', 'req_2']);
    first = waitListening();
    await sql(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'countersign-b-listen'",
    );
    await first;
    expect(states).toEqual([true, false, true]);
    a.changes().publish('req_3');
    await expect.poll(() => seen, { timeout: 2000, interval: 10 }).toEqual(['req_1', 'req_2', 'req_3']);
  });
});
