/**
 * Micro-benchmark: the SQLite store's group commit in-process, with the exact unit of work an
 * auto-allow commits (consume jti, insert request, 3 chained audit events, insert lease), on
 * a fresh WAL file with synchronous=FULL. better-sqlite3 calls are timed by SQL text, so the
 * per-statement cost, the COMMIT (fsync) cost and Kysely's compile cost are separated.
 *
 *   node --import tsx bench/micro/store.ts [units-per-batch=50] [seconds=5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { AccessRequestRecord, LeaseRecord, StoreTx } from '../../packages/core/src/index.ts';
import { SqliteStore } from '../../packages/store/src/index.ts';

const BATCH = Number(process.argv[2] ?? 50);
const SECONDS = Number(process.argv[3] ?? 5);

// ---- timing hooks on better-sqlite3 (this process only) ----
const timings = new Map<string, { n: number; ns: bigint }>();
const note = (key: string, ns: bigint) => {
  const t = timings.get(key) ?? { n: 0, ns: 0n };
  t.n++;
  t.ns += ns;
  timings.set(key, t);
};
const label = (sql: string) => sql.replace(/\s+/g, ' ').slice(0, 60);
const proto = BetterSqlite3.prototype as unknown as {
  exec: (sql: string) => unknown;
  prepare: (sql: string) => BetterSqlite3.Statement;
};
/** MICRO_STORE_TIMERS=0: no per-call timers (their cost would count in the CPU figure; the bench's floor uses it). */
const TIMERS = process.env.MICRO_STORE_TIMERS !== '0';
const origExec = proto.exec;
if (TIMERS)
  proto.exec = function (this: unknown, sql: string) {
    const t = process.hrtime.bigint();
    try {
      return origExec.call(this, sql);
    } finally {
      note(`exec ${sql}`, process.hrtime.bigint() - t);
    }
  };
let patched = false;
const origPrepare = proto.prepare;
if (TIMERS)
  proto.prepare = function (this: unknown, sql: string) {
    const stmt = origPrepare.call(this, sql);
    (stmt as unknown as { __label: string }).__label = label(sql);
    if (!patched) {
      patched = true;
      const sp = Object.getPrototypeOf(stmt) as Record<string, (...a: unknown[]) => unknown>;
      for (const m of ['run', 'all', 'get'] as const) {
        const orig = sp[m]!;
        sp[m] = function (this: { __label: string }, ...args: unknown[]) {
          const t = process.hrtime.bigint();
          try {
            return orig.apply(this, args);
          } finally {
            note(`${m} ${this.__label}`, process.hrtime.bigint() - t);
          }
        };
      }
    }
    return stmt;
  };

const dir = mkdtempSync(join(tmpdir(), 'countersign-micro-store-'));
let seq = 0;
const ids = { next: (p: string) => `${p}_${(seq++).toString(36).padStart(22, '0')}` };
const store = SqliteStore.open({ file: join(dir, 'bench.db'), ids });

function unit(i: number) {
  const now = Date.now();
  const id = ids.next('req');
  const leaseId = ids.next('lease');
  const record: AccessRequestRecord = {
    id,
    agentId: 'bench-agent',
    action: 'read',
    resource: 'postgres://staging/app/orders',
    taskId: 't1',
    status: 'allowed',
    digest: `sha256:${'ab'.repeat(32)}`,
    canonical: JSON.stringify({
      agent: { id: 'bench-agent', owner: 'billing' },
      action: 'read',
      pad: 'x'.repeat(400),
    }),
    decision: {
      outcome: 'allow',
      determiningPolicies: [
        { id: 'read-internal', effect: 'permit', reason: 'Reading internal data is routine' },
      ],
      reasons: ['Reading public or internal data inside the agent own boundary is routine'],
      obligations: {
        maxTtlSeconds: 900,
        approvals: 0,
        reviewerGroup: null,
        deadlineSeconds: 900,
        separation: [],
      },
      policyVersion: `sha256:${'cd'.repeat(32)}`,
      errorCode: null,
    },
    risk: { score: 5, factors: [{ name: 'sensitivity', weight: 5, detail: 'resource is internal' }] },
    idempotencyKey: null,
    bodyHash: 'ef'.repeat(32),
    createdAt: now,
    decidedAt: now,
    deadlineAt: null,
    leaseId,
    cnfJkt: null,
  };
  const lease: LeaseRecord = {
    id: leaseId,
    requestId: id,
    agentId: 'bench-agent',
    taskId: 't1',
    kind: 'access_token',
    credentialId: leaseId,
    fingerprint: `sha256:${'12'.repeat(32)}`,
    audience: 'postgres://staging/app',
    scope: { audience: 'postgres://staging/app', authorization_details: [{ type: 'countersign_access' }] },
    issuedAt: now,
    expiresAt: now + 900_000,
    status: 'active',
    revokedAt: null,
    revokeReason: null,
    deliveredAt: now,
    cnfJkt: null,
    issuer: 'access_token',
    action: 'read',
    resource: 'postgres://staging/app/orders',
    revokeAttempts: 0,
    nextRevokeAt: null,
    claimedUntil: null,
    lastRevokeError: null,
    revokeConfirmedAt: null,
  };
  return async (tx: StoreTx) => {
    await tx.consumeTokenId('bench-agent', `jti-${i}`, now + 360_000);
    await tx.insertRequest(record);
    const actor = { type: 'agent' as const, id: 'bench-agent' };
    await tx.appendAudit(
      { type: 'access_request.received', actor, requestId: id, data: { a: 1, digest: record.digest } },
      now,
    );
    await tx.appendAudit(
      {
        type: 'access_request.decided',
        actor: { type: 'system', id: 'checkpoint' },
        requestId: id,
        data: { outcome: 'allow' },
      },
      now,
    );
    await tx.insertLease(lease);
    await tx.appendAudit(
      {
        type: 'lease.issued',
        actor: { type: 'system', id: 'issuer:access_token' },
        requestId: id,
        data: { lease_id: leaseId },
      },
      now,
    );
  };
}

async function main() {
  let i = 0;
  // Warm-up.
  for (let b = 0; b < 20; b++)
    await Promise.all(Array.from({ length: BATCH }, () => store.transaction(unit(i++))));
  timings.clear();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let units = 0;
  let batches = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    await Promise.all(Array.from({ length: BATCH }, () => store.transaction(unit(i++))));
    units += BATCH;
    batches++;
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  let sqlNs = 0n;
  const rows = [...timings].sort((a, b) => Number(b[1].ns - a[1].ns));
  for (const [, t] of rows) sqlNs += t.ns;
  console.log(
    `batch ${BATCH}: ${units} units in ${wall.toFixed(2)} s = ${(units / wall).toFixed(0)} units/s, ${(batches / wall).toFixed(0)} commits/s; ` +
      `wall ${((wall / units) * 1e6).toFixed(0)} us/unit, CPU ${((cpu.user + cpu.system) / units).toFixed(0)} us/unit`,
  );
  console.log(`time inside better-sqlite3: ${(Number(sqlNs) / 1e3 / units).toFixed(1)} us/unit`);
  // Everything but COMMIT, whose time is mostly waiting for the fsync (no core is busy).
  let statementNs = 0n;
  for (const [key, t] of rows) if (!key.startsWith('exec COMMIT')) statementNs += t.ns;
  console.log(`statements without COMMIT: ${(Number(statementNs) / 1e3 / units).toFixed(1)} us/unit`);
  console.log(
    'per call:                                                         calls/unit   us/call   us/unit',
  );
  for (const [k, t] of rows.slice(0, 16)) {
    console.log(
      `  ${k.padEnd(62)} ${(t.n / units).toFixed(2).padStart(9)} ${(Number(t.ns) / 1e3 / t.n).toFixed(1).padStart(9)} ${(Number(t.ns) / 1e3 / units).toFixed(1).padStart(9)}`,
    );
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
