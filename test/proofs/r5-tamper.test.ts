/**
 * THREATS.md R5 (I1, I2, I3, I5): 1,000 random single mutations of the audit table of a real
 * on-disk SQLite file, each checked by the same verifier `countersign audit verify` runs
 * (reading the mutated file through the store), with the head exported before the mutation
 * (`--expect-head`, as the README tells operators to keep it). Every mutation must be detected.
 * A sample goes through the real CLI and must exit 1. EXTENDED=1 runs 10,000 and a larger
 * CLI sample. Seeded: the seed is printed, FC_SEED=<n> replays a run.
 */
import { copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyAuditChain } from '@countersign/core';
import { SqliteStore } from '@countersign/store';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, startHarness } from '../support/harness.js';
import { cliAsync } from '../support/instances.js';

const EXTENDED = process.env.EXTENDED === '1';
const MUTATIONS = EXTENDED ? 10_000 : 1_000;
// Each CLI run is a whole process (several seconds on a loaded 2-core machine).
const CLI_SAMPLE = EXTENDED ? 24 : 3;
const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : Date.now() % 2_147_483_647;

const COLUMNS = [
  'id',
  'at',
  'type',
  'actor_type',
  'actor_id',
  'request_id',
  'data',
  'prev_hash',
  'hash',
] as const;

type Row = Record<(typeof COLUMNS)[number] | 'seq', string | number | null>;

type Mutation =
  | { kind: 'flip-char'; row: number; column: (typeof COLUMNS)[number]; at: number; char: number }
  | { kind: 'data-value'; row: number; value: string }
  | { kind: 'delete-row'; row: number }
  | { kind: 'swap-rows'; a: number; b: number }
  | { kind: 'reorder'; a: number; b: number }
  | { kind: 'truncate-tail'; k: number }
  | { kind: 'insert-copy'; row: number; at: number }
  | { kind: 'rechain-one'; row: number; value: string };

function mutationArb(rows: number): fc.Arbitrary<Mutation> {
  const row = fc.integer({ min: 1, max: rows });
  const pair = fc
    .tuple(row, row)
    .filter(([a, b]) => a !== b)
    .map(([a, b]) => ({ a, b }));
  return fc.oneof(
    fc.record({
      kind: fc.constant('flip-char' as const),
      row,
      column: fc.constantFrom(...COLUMNS),
      at: fc.nat(),
      char: fc.integer({ min: 0x21, max: 0x7e }),
    }),
    fc.record({
      kind: fc.constant('data-value' as const),
      row,
      value: fc.string({ minLength: 1, maxLength: 12 }),
    }),
    fc.record({ kind: fc.constant('delete-row' as const), row }),
    pair.map((p) => ({ kind: 'swap-rows' as const, ...p })),
    pair.map((p) => ({ kind: 'reorder' as const, ...p })),
    fc.record({ kind: fc.constant('truncate-tail' as const), k: fc.integer({ min: 1, max: 5 }) }),
    fc.record({ kind: fc.constant('insert-copy' as const), row, at: row }),
    fc.record({
      kind: fc.constant('rechain-one' as const),
      row,
      value: fc.string({ minLength: 1, maxLength: 12 }),
    }),
  );
}

/** Applies one mutation to the file; returns false when it would change nothing (skipped). */
function mutate(file: string, m: Mutation): boolean {
  const db = new Database(file);
  try {
    const get = (seq: number) => db.prepare('SELECT * FROM audit_events WHERE seq = ?').get(seq) as Row;
    const setAll = (seq: number, r: Row) =>
      db
        .prepare(`UPDATE audit_events SET ${COLUMNS.map((c) => `${c} = @${c}`).join(', ')} WHERE seq = @seq`)
        .run({ ...r, seq });
    const max = (db.prepare('SELECT max(seq) AS m FROM audit_events').get() as { m: number }).m;
    return db.transaction(() => {
      switch (m.kind) {
        case 'flip-char': {
          const r = get(m.row);
          const old = r[m.column] === null ? '' : String(r[m.column]);
          const i = old.length === 0 ? 0 : m.at % old.length;
          const ch = String.fromCharCode(m.char);
          if (old[i] === ch) return false;
          const value = old.slice(0, i) + ch + old.slice(i + 1);
          db.prepare(`UPDATE audit_events SET ${m.column} = ? WHERE seq = ?`).run(value, m.row);
          return true;
        }
        case 'data-value':
        case 'rechain-one': {
          // A semantic edit that stays valid JSON: one field of the event's data changed.
          const r = get(m.row);
          const data = JSON.parse(String(r.data)) as Record<string, unknown>;
          const keys = Object.keys(data);
          const key = keys.length > 0 ? keys[m.value.length % keys.length]! : 'forged';
          if (data[key] === m.value) return false;
          data[key] = m.value;
          db.prepare('UPDATE audit_events SET data = ? WHERE seq = ?').run(JSON.stringify(data), m.row);
          if (m.kind === 'rechain-one') {
            // The forger recomputes this event's own hash (the format is public); without the
            // head kept elsewhere and the next event's prev_hash this would be invisible.
            const changed = get(m.row);
            db.prepare('UPDATE audit_events SET hash = ? WHERE seq = ?').run(rehash(changed), m.row);
          }
          return true;
        }
        case 'delete-row':
          db.prepare('DELETE FROM audit_events WHERE seq = ?').run(m.row);
          return true;
        case 'swap-rows': {
          // Every column but seq trades places: both rows stay where they were in the order.
          const a = get(m.a);
          const b = get(m.b);
          db.prepare('UPDATE audit_events SET id = id || ? WHERE seq IN (?, ?)').run('~', m.a, m.b);
          setAll(m.a, b);
          setAll(m.b, a);
          return true;
        }
        case 'reorder':
          // Two events change places in the order (their seq values are swapped).
          db.prepare('UPDATE audit_events SET seq = -1 WHERE seq = ?').run(m.a);
          db.prepare('UPDATE audit_events SET seq = ? WHERE seq = ?').run(m.a, m.b);
          db.prepare('UPDATE audit_events SET seq = ? WHERE seq = -1').run(m.b);
          return true;
        case 'truncate-tail':
          db.prepare('DELETE FROM audit_events WHERE seq > ?').run(max - m.k);
          return true;
        case 'insert-copy': {
          // A copy of an existing event (new id) slipped in at position `at`, later ones shifted.
          const r = get(m.row);
          db.prepare('UPDATE audit_events SET seq = -seq WHERE seq >= ?').run(m.at);
          db.prepare('UPDATE audit_events SET seq = -seq + 1 WHERE seq < 0').run();
          db.prepare(
            `INSERT INTO audit_events (seq, ${COLUMNS.join(', ')}) VALUES (@seq, ${COLUMNS.map((c) => `@${c}`).join(', ')})`,
          ).run({ ...r, seq: m.at, id: `${String(r.id)}-copy` });
          return true;
        }
        default: {
          const never: never = m;
          throw new Error(`unknown mutation ${JSON.stringify(never)}`);
        }
      }
    })();
  } finally {
    db.close();
  }
}

let rehash: (r: Row) => string;

async function verifyFile(file: string, head: { seq: number; hash: string }) {
  const store = SqliteStore.open({ file, ids: { next: (p) => `${p}_x` }, writer: 'inline' });
  try {
    const events = [];
    for await (const e of store.auditEvents()) events.push(e);
    return verifyAuditChain(events, head);
  } finally {
    await store.close();
  }
}

describe('R5 audit tamper detection on an on-disk SQLite file', () => {
  let dir: string;
  let home: string;
  let base: string;
  let head: { seq: number; hash: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'countersign-r5-'));
    home = join(dir, 'home');
    const h = await startHarness({ home });
    const agent = await h.addAgent('bot');
    const other = await h.addAgent('spiffe://acme.dev/agent/other', { owner: 'team-b' });
    for (let i = 0; i < 12; i++) {
      await h.requestAccess(
        agent,
        body({ intent: { purpose: `read ${i} "}\n{"x":1`, task_id: `t${i % 3}` } }),
      );
      await h.requestAccess(other, body({ action: 'write', resource: 'postgres://prod/billing/invoices' }));
      await h.requestAccess(agent, body({ action: 'frobnicate' }));
    }
    await h.close({ keepHome: true });
    // One self-contained file: the WAL folded in, so a copy is the whole database.
    const db = new Database(join(home, 'countersign.db'));
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
    const last = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as {
      seq: number;
      hash: string;
    };
    db.close();
    head = { seq: last.seq, hash: last.hash };
    base = join(dir, 'base.db');
    copyFileSync(join(home, 'countersign.db'), base);
    const { auditEventHash } = await import('@countersign/core');
    const { toAuditEvent } = await import('../../packages/store/src/sql-store.js');
    rehash = (r) => auditEventHash(toAuditEvent(r as never));
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('R5 the untouched file verifies (the verifier is not simply failing)', async () => {
    const result = await verifyFile(base, head);
    expect(result.ok).toBe(true);
    expect(head.seq).toBeGreaterThan(60);
  });

  it(`R5 I1 I2 I3 ${MUTATIONS} random single mutations: 100% detected by the audit verifier`, async () => {
    const work = join(dir, 'work.db');
    const byKind: Record<string, { applied: number; detected: number }> = {};
    let applied = 0;
    let detected = 0;
    let skipped = 0;
    const started = Date.now();
    // A few generated mutations change nothing (a character replaced by itself): they are
    // skipped and more are drawn, so exactly MUTATIONS real ones are checked.
    const samples = fc.sample(mutationArb(head.seq), { numRuns: MUTATIONS * 2, seed: SEED });
    const missed: Mutation[] = [];
    for (const m of samples) {
      if (applied === MUTATIONS) break;
      copyFileSync(base, work);
      if (!mutate(work, m)) {
        skipped++;
        continue;
      }
      applied++;
      byKind[m.kind] ??= { applied: 0, detected: 0 };
      const k = byKind[m.kind]!;
      k.applied++;
      const result = await verifyFile(work, head);
      if (!result.ok) {
        detected++;
        k.detected++;
      } else missed.push(m);
    }
    const summary = {
      goal: 'R5',
      seed: SEED,
      events: head.seq,
      generated: applied + skipped,
      applied,
      skipped_no_change: skipped,
      detected,
      detection_rate: applied === 0 ? 0 : detected / applied,
      by_kind: byKind,
      seconds: (Date.now() - started) / 1000,
    };
    console.log(JSON.stringify(summary));
    expect(missed).toEqual([]);
    expect(applied).toBe(MUTATIONS);
    expect(Object.keys(byKind).length).toBe(8);
  }, 600_000);

  it(`R5 I1 I2 a sample of ${CLI_SAMPLE} mutations through \`countersign audit verify --expect-head\`: exit 1 each, exit 0 untouched`, async () => {
    const expectHead = `${head.seq}:${head.hash}`;
    const intact = await cliAsync(home, ['audit', 'verify', '--expect-head', expectHead]);
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.stdout).toContain(`head ${expectHead}`);
    const samples = fc.sample(mutationArb(head.seq), { numRuns: CLI_SAMPLE * 2, seed: SEED + 1 });
    const codes: Array<number | null> = [];
    const homes: string[] = [];
    for (const m of samples) {
      if (homes.length === CLI_SAMPLE) break;
      const copy = join(dir, `cli-${homes.length}`);
      cpSync(home, copy, { recursive: true });
      copyFileSync(base, join(copy, 'countersign.db'));
      if (mutate(join(copy, 'countersign.db'), m)) homes.push(copy);
    }
    for (let i = 0; i < homes.length; i += 3) {
      const runs = await Promise.all(
        homes.slice(i, i + 3).map((h) => cliAsync(h, ['audit', 'verify', '--expect-head', expectHead])),
      );
      for (const r of runs) {
        codes.push(r.code);
        expect(r.stderr).toMatch(/audit chain BROKEN at event #\d+/);
      }
    }
    console.log(
      JSON.stringify({ goal: 'R5', cli_sample: codes.length, exit_1: codes.filter((c) => c === 1).length }),
    );
    expect(codes).toEqual(homes.map(() => 1));
  }, 300_000);
});
