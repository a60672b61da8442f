/** SQLite-specific guarantees: durability settings, migrations, several processes on one file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { verifyAuditChain } from '@countersign/core';
import Database from 'better-sqlite3';
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION, SqliteStore } from '../src/index.js';

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

  it('runs WAL with synchronous=FULL (durability is not traded for speed)', async () => {
    const store = SqliteStore.open({ file, ids });
    // SQLite's synchronous levels: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 2 });
    await store.close();
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
    const k = new Kysely<any>({
      dialect: {
        createAdapter: () => new SqliteAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (db) => new SqliteIntrospector(db),
        createQueryCompiler: () => new SqliteQueryCompiler(),
      },
    });
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
