/** SQLite-specific guarantees: durability settings, migrations, several processes on one file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runUnit, verifyAuditChain } from '@countersign/core';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION, SqliteStore } from '../src/index.js';
import { sqliteCompiler } from './support/compilers.js';

let n = 0;
const ids = { next: (p: string) => `${p}_${process.pid}_${++n}` };

describe('SQLite adapter', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'countersign-sqlite-'));
    file = join(dir, 'c.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs WAL with synchronous=FULL (durability is not traded for speed), on either writer', async () => {
    for (const writer of ['inline', 'thread'] as const) {
      const store = SqliteStore.open({ file, ids, writer });
      // SQLite's synchronous levels: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
      expect(await store.durability()).toEqual({ journalMode: 'wal', synchronous: 2 });
      await store.close();
    }
  });

  it('H8 a writer thread that dies fails its units closed; the next unit gets a new thread', async () => {
    const store = SqliteStore.open({ file, ids, writer: 'thread' });
    await store.transaction((tx) =>
      tx.appendAudit({ type: 'before', actor: { type: 'system', id: 't' }, data: {} }, 1),
    );
    // The thread dies in the middle of a group commit: one unit has written, its neighbours
    // are queued behind it. None may report success, nothing of the group may commit.
    const crashing = store.transaction(async (tx) => {
      await tx.appendAudit({ type: 'during', actor: { type: 'system', id: 't' }, data: {} }, 2);
      await SqliteStore.killWriterThreadForTests();
      await tx.consumeTokenId('agent', 'jti-crash', 10);
    });
    const neighbours = Array.from({ length: 10 }, (_, i) =>
      runUnit(store, 'consumeAssertion', {
        agentId: 'agent',
        oneTimeIds: [{ namespace: 'jwt-bearer:agent', id: `jti-${i}`, expiresAt: 10 }],
        seenAt: null,
        dpopJkt: null,
      }),
    );
    const outcomes = await Promise.allSettled([crashing, ...neighbours]);
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect((o as PromiseRejectedResult).reason).toMatchObject({ code: 'CS_STORE_UNAVAILABLE' });
    }
    expect(store.writeHealth()).not.toBeNull();
    // A unit after the crash runs on a new thread; the group that died left nothing behind.
    await store.transaction((tx) =>
      tx.appendAudit({ type: 'after', actor: { type: 'system', id: 't' }, data: {} }, 3),
    );
    expect(store.writeHealth()).toBeNull();
    const events = [];
    for await (const e of store.auditEvents()) events.push(e);
    expect(verifyAuditChain(events)).toMatchObject({ ok: true, count: 2 });
    expect(events.map((e) => e.type)).toEqual(['before', 'after']);
    expect(
      await runUnit(store, 'consumeAssertion', {
        agentId: 'agent',
        oneTimeIds: [{ namespace: 'jwt-bearer:agent', id: 'jti-0', expiresAt: 10 }],
        seenAt: null,
        dpopJkt: null,
      }),
    ).toBe(undefined);
    await store.close();
  });

  /** The assertion of one use of `jti` (a named unit: it travels in a one-message group). */
  const consume = (store: SqliteStore, jti: string) =>
    runUnit(store, 'consumeAssertion', {
      agentId: 'agent',
      oneTimeIds: [{ namespace: 'jwt-bearer:agent', id: jti, expiresAt: 10 }],
      seenAt: null,
      dpopJkt: null,
    });

  it('one-message groups: a failing unit rolls back alone, two groups in flight and a closure after them answer in order', async () => {
    const store = SqliteStore.open({ file, ids, writer: 'thread' });
    const answered: string[] = [];
    const track = (label: string, p: Promise<unknown>) =>
      p.then(
        () => answered.push(label),
        (error: unknown) => {
          answered.push(label);
          throw error;
        },
      );
    const tick = () => new Promise((r) => setImmediate(r));
    // Wave 1 goes out as one group; wave 2, a tick later, as a second group while the first
    // is in flight. Wave 2 replays every jti of wave 1 (the first group commits before the
    // second runs) and repeats one of its own (a failure inside its own group).
    const wave1 = Array.from({ length: 100 }, (_, i) => track('1', consume(store, `w1-${i}`)));
    await tick();
    const wave2 = [
      ...Array.from({ length: 100 }, (_, i) => track('2', consume(store, `w1-${i}`))),
      track('2', consume(store, 'w2-once')),
      track('2', consume(store, 'w2-once')),
    ];
    // A closure unit and wave 3 queue behind both groups: they go as one batch, alone.
    const closure = track(
      '3',
      store.transaction((tx) =>
        tx.appendAudit({ type: 'closure', actor: { type: 'system', id: 't' }, data: {} }, 1),
      ),
    );
    const wave3 = Array.from({ length: 50 }, (_, i) => track('3', consume(store, `w3-${i}`)));
    const [r1, r2, r3] = await Promise.all([
      Promise.allSettled(wave1),
      Promise.allSettled(wave2),
      Promise.allSettled([closure, ...wave3]),
    ]);
    expect(r1.every((o) => o.status === 'fulfilled')).toBe(true);
    expect(r3.every((o) => o.status === 'fulfilled')).toBe(true);
    for (const o of r2.slice(0, 100)) {
      expect(o.status).toBe('rejected');
      expect((o as PromiseRejectedResult).reason).toMatchObject({ code: 'CS_TOKEN_REPLAYED' });
    }
    expect(r2[100]!.status).toBe('fulfilled');
    expect((r2[101] as PromiseRejectedResult).reason).toMatchObject({ code: 'CS_TOKEN_REPLAYED' });
    // Answers come group by group, in the order the groups were sent.
    expect(answered.join('')).toBe(`${'1'.repeat(100)}${'2'.repeat(102)}${'3'.repeat(51)}`);
    // Every success is durable: its jti cannot be consumed again.
    for (const jti of ['w1-0', 'w1-99', 'w2-once', 'w3-0', 'w3-49'])
      await expect(consume(store, jti)).rejects.toThrow(/replay/);
    const events = [];
    for await (const e of store.auditEvents()) events.push(e);
    expect(verifyAuditChain(events)).toMatchObject({ ok: true, count: 1 });
    expect(store.writeHealth()).toBeNull();
    await store.close();
  });

  it('H8 a writer thread that dies with groups in flight: no unit reports success that did not commit', async () => {
    const store = SqliteStore.open({ file, ids, writer: 'thread' });
    await consume(store, 'warm-up');
    const units = Array.from({ length: 200 }, (_, i) => consume(store, `jti-${i}`));
    await new Promise((r) => setImmediate(r));
    await SqliteStore.killWriterThreadForTests();
    const outcomes = await Promise.allSettled(units);
    const failed = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
    for (const o of failed) expect(o.reason).toMatchObject({ code: 'CS_STORE_UNAVAILABLE' });
    // The next units run on a new thread; each earlier success must still be there.
    // How many were answered before the kill landed depends on the disk; the rule does not.
    await consume(store, 'after-the-crash');
    expect(store.writeHealth()).toBeNull();
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled') await expect(consume(store, `jti-${i}`)).rejects.toThrow(/replay/);
    }
    await store.close();
  });

  it('H7 two stores on one file in one process (two instances) never block each other on the writer thread', async () => {
    const a = SqliteStore.open({ file, ids, writer: 'thread', busyTimeoutMs: 1000 });
    const b = SqliteStore.open({ file, ids, writer: 'thread', busyTimeoutMs: 1000 });
    // Closure units make round trips to this thread: a group commit of one store stays open
    // across them, and the other store's BEGIN must wait for its COMMIT, not deadlock it.
    const work = (store: SqliteStore, i: number) =>
      store.transaction(async (tx) => {
        await tx.appendAudit({ type: 'both', actor: { type: 'system', id: 't' }, data: { i } }, i);
        await tx.consumeTokenId('x', `jti-${i}`, 10);
      });
    await Promise.all(Array.from({ length: 40 }, (_, i) => work(i % 2 ? a : b, i)));
    const events = [];
    for await (const e of a.auditEvents()) events.push(e);
    expect(verifyAuditChain(events)).toMatchObject({ ok: true, count: 40 });
    await a.close();
    await b.close();
  });

  it("several stores share the writer thread, never each other's data", async () => {
    const other = join(dir, 'other.db');
    const a = SqliteStore.open({ file, ids, writer: 'thread' });
    const b = SqliteStore.open({ file: other, ids, writer: 'thread' });
    await Promise.all([
      a.transaction((tx) => tx.consumeTokenId('x', 'only-in-a', 10)),
      b.transaction((tx) => tx.completeTask('agent', 'only-in-b', 1)),
    ]);
    expect(await a.read((tx) => tx.isTaskCompleted('agent', 'only-in-b'))).toBe(false);
    expect(await b.read((tx) => tx.isTaskCompleted('agent', 'only-in-b'))).toBe(true);
    expect(await b.transaction((tx) => tx.consumeTokenId('x', 'only-in-a', 10))).toBe(true);
    await a.close();
    await b.close();
  });

  it('H9 migrations are idempotent and a newer schema is refused', async () => {
    const a = SqliteStore.open({ file, ids });
    await a.close();
    const b = SqliteStore.open({ file, ids });
    await b.close();
    const db = new Database(file);
    expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({
      value: String(SCHEMA_VERSION),
    });
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    expect(() => SqliteStore.open({ file, ids })).toThrow(/newer than this Countersign/);
  });

  it('H7 two processes appending to one file keep one linear, intact chain', async () => {
    const store = SqliteStore.open({ file, ids });
    await store.close();
    const script = resolve(import.meta.dirname, 'support/append-worker.ts');
    const tsx = resolve(import.meta.dirname, '../../../node_modules/tsx/dist/cli.mjs');
    const { spawn } = await import('node:child_process');
    const parallel = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<number>((ok) => {
            const child = spawn(process.execPath, [tsx, script, file, '300'], { stdio: 'ignore' });
            child.on('exit', (code) => ok(code ?? -1));
          }),
      ),
    );
    expect(parallel).toEqual([0, 0]);
    const check = SqliteStore.open({ file, ids });
    const events = [];
    for await (const e of check.auditEvents()) events.push(e);
    await check.close();
    expect(events).toHaveLength(600);
    expect(verifyAuditChain(events)).toMatchObject({ ok: true, count: 600 });
    const db = new Database(file);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it('B13 migration 4 keeps existing agents and their keys, makes keys optional and binds each workload identity once', async () => {
    // A database as version 3 left it, with one key-registered agent.
    const k = sqliteCompiler();
    const db = new Database(file);
    for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
      for (const stmt of m.statements(k)) db.prepare(stmt.sql).run(...(stmt.parameters as unknown[]));
    }
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', '3')").run();
    db.prepare(
      "INSERT INTO agents (id, owner, boundary, environment, trust_tier, status, public_jwk, jwk_thumbprint, created_at) VALUES ('old-bot', 'app', 'acme', 'production', 'standard', 'active', '{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"abc\"}', 'tp-1', 5)",
    ).run();
    db.close();

    const store = SqliteStore.open({ file, ids });
    const old = await store.read((tx) => tx.getAgent('old-bot'));
    expect(old).toMatchObject({
      id: 'old-bot',
      publicJwk: { kty: 'OKP', crv: 'Ed25519', x: 'abc' },
      jwkThumbprint: 'tp-1',
      createdAt: 5,
      expiresAt: null,
      lastSeenAt: null,
    });
    const keyless = { ...old!, id: 'k8s-bot', publicJwk: null, jwkThumbprint: null };
    await store.transaction(async (tx) => {
      await tx.insertAgent(keyless);
      await tx.insertAgent({ ...keyless, id: 'k8s-bot-2' });
      await tx.insertWorkloadIdentity({
        issuer: 'https://k8s',
        subject: 's',
        agentId: 'k8s-bot',
        createdAt: 1,
      });
    });
    await expect(
      store.transaction((tx) =>
        tx.insertWorkloadIdentity({
          issuer: 'https://k8s',
          subject: 's',
          agentId: 'k8s-bot-2',
          createdAt: 2,
        }),
      ),
    ).rejects.toMatchObject({ code: 'CS_IDENTITY_EXISTS' });
    await expect(
      store.transaction((tx) => tx.insertAgent({ ...old!, id: 'copy-bot' })),
    ).rejects.toMatchObject({
      code: 'CS_AGENT_EXISTS',
    });
    expect((await store.read((tx) => tx.getAgentByWorkloadIdentity('https://k8s', 's')))?.id).toBe('k8s-bot');
    await store.transaction((tx) => tx.touchAgent('k8s-bot', 100));
    await store.transaction((tx) => tx.touchAgent('k8s-bot', 50));
    expect((await store.read((tx) => tx.getAgent('k8s-bot')))?.lastSeenAt).toBe(100);
    await store.close();
  });
});
