/**
 * THREATS.md R3 (H1, INV-2, INV-3): crash safety of issuance on SQLite. A real
 * `countersign serve` child runs with `COUNTERSIGN_FAILPOINT=<name>:<n>` and kills itself with
 * SIGKILL at that point of the issuance path while agents send allow requests (several at once,
 * so group commits hold more than one decision). The harness then checks the file exactly as
 * the killed process left it (WAL and all), restarts, and repeats:
 *
 * - every credential a client received has its lease row and its `lease.issued` audit event
 *   committed (no credential without an audit record);
 * - every lease row has its `lease.issued` event (nothing issued outside the chain);
 * - at most one lease per request, per Idempotency-Key and per credential id (no double
 *   issuance), including retries after the crash with the same Idempotency-Key;
 * - `PRAGMA integrity_check` is ok and the audit chain verifies after every kill, and
 *   `countersign audit verify` (the CLI) passes at the end.
 *
 * The client here never crashes, so it keeps its receipts in memory; the server is what dies.
 * CI: about 30 kills; EXTENDED=1: 200.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyAuditChain } from '@countersign/core';
import { FAILPOINTS } from '@countersign/store';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initHome } from '../../packages/cli/src/commands/init.js';
import { toAuditEvent } from '../../packages/store/src/sql-store.js';
import { type HttpAgent, openLocal, registerAgents } from '../support/http-actors.js';
import { cliAsync, startInstance } from '../support/instances.js';

const EXTENDED = process.env.EXTENDED === '1';
// Each restart of a real serve process takes seconds on a loaded 2-core machine: the CI tier
// covers every failpoint, the extended one repeats them.
const KILLS = EXTENDED ? 200 : 10;
const PER_CYCLE = 4;
const ISSUER = 'http://localhost:8787';

interface Sent {
  readonly agent: HttpAgent;
  readonly key: string;
  readonly body: Record<string, unknown>;
  /** A second try after a crash, with the same Idempotency-Key (retried once only). */
  readonly retry?: boolean;
}

interface Received {
  readonly requestId: string;
  readonly leaseId: string;
  readonly credentialId: string | null;
  readonly key: string;
}

function allowBody(i: number): Record<string, unknown> {
  return {
    action: 'read',
    resource: 'postgres://staging/app/orders',
    intent: { purpose: `R3 crash cycle ${i}`, task_id: `task-${i}` },
  };
}

function jwtId(token: string): string | null {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    return typeof payload.jti === 'string' ? payload.jti : null;
  } catch {
    return null;
  }
}

describe('R3 crash safety: kill -9 at named failpoints during issuance (SQLite, writer thread)', () => {
  let home: string;
  let agents: HttpAgent[] = [];

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'countersign-r3-'));
    await initHome({ home, dev: true });
    writeFileSync(join(home, 'countersign.yaml'), 'dev: true\n');
    const local = await openLocal(home, { DATABASE_URL: '' }, ISSUER);
    agents = await registerAgents(
      local,
      ISSUER,
      ['r3-a', 'r3-b', 'r3-c', 'r3-d'].map((id) => ({ id, owner: 'app' })),
    );
    await local.close();
  }, 120_000);

  /** The child of the current cycle: stopped here if an assertion ends the test mid-cycle. */
  let live: import('node:child_process').ChildProcess | null = null;
  afterAll(() => {
    if (live && live.exitCode === null && live.signalCode === null) live.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  });

  it(
    `R3 H1 INV-2 INV-3 ${KILLS} kills at ${FAILPOINTS.length} failpoints: no credential without a committed audit event, no double issuance, the chain verifies after every restart`,
    async () => {
      const received: Received[] = [];
      let unanswered: Sent[] = [];
      let kills = 0;
      let startsKilledEarly = 0;
      let retriedAfterCrash = 0;
      let replayed = 0;
      let chainChecks = 0;
      const readyMs: number[] = [];
      const byFailpoint: Record<string, number> = {};
      const started = Date.now();
      let cycle = 0;

      const checkFile = () => {
        // A read-write connection, as the restarted server would open it: it recovers the WAL.
        const db = new Database(join(home, 'countersign.db'));
        try {
          expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
          const events = (db.prepare('SELECT * FROM audit_events ORDER BY seq').all() as never[]).map(
            toAuditEvent,
          );
          const verified = verifyAuditChain(events);
          expect(verified.ok, JSON.stringify(verified)).toBe(true);
          chainChecks++;
          const issued = new Map<string, Record<string, unknown>>();
          for (const e of events) if (e.type === 'lease.issued') issued.set(String(e.data.lease_id), e.data);
          const leases = db
            .prepare(
              `SELECT l.id, l.request_id, l.credential_id, r.idempotency_key, r.agent_id
               FROM leases l JOIN access_requests r ON r.id = l.request_id`,
            )
            .all() as Array<{
            id: string;
            request_id: string;
            credential_id: string;
            idempotency_key: string | null;
            agent_id: string;
          }>;
          // Every lease in the chain; every received credential in the leases and the chain.
          for (const l of leases) expect(issued.has(l.id), `lease ${l.id} without lease.issued`).toBe(true);
          const leaseIds = new Set(leases.map((l) => l.id));
          for (const r of received) {
            expect(leaseIds.has(r.leaseId), `received ${r.leaseId} has no committed lease`).toBe(true);
            expect(issued.get(r.leaseId)?.credential_id).toBe(r.credentialId);
          }
          // No double issuance: one lease per request, per idempotency key, per credential id.
          const unique = (values: string[]) => expect(new Set(values).size).toBe(values.length);
          unique(leases.map((l) => l.request_id));
          unique(leases.map((l) => l.credential_id));
          unique(leases.filter((l) => l.idempotency_key).map((l) => `${l.agent_id}/${l.idempotency_key}`));
          unique(received.map((r) => r.leaseId));
          return leases.length;
        } finally {
          db.close();
        }
      };

      while (kills < KILLS) {
        const name = FAILPOINTS[cycle % FAILPOINTS.length]!;
        // The n-th time the point is reached (1..9): some requests of the cycle finish first.
        const hit = 1 + ((cycle * 5) % 9);
        cycle++;
        const t0 = Date.now();
        let instance: Awaited<ReturnType<typeof startInstance>>;
        try {
          instance = await startInstance({
            name: `r3-${cycle}`,
            home,
            issuer: ISSUER,
            env: { DATABASE_URL: '', COUNTERSIGN_FAILPOINT: `${name}:${hit}`, COUNTERSIGN_LOG_LEVEL: 'warn' },
          });
        } catch (error) {
          // Start-up never reaches an issuance failpoint; if it ever did, count it and go on.
          startsKilledEarly++;
          kills++;
          checkFile();
          if (startsKilledEarly > 3) throw error;
          continue;
        }
        live = instance.child;
        readyMs.push(Date.now() - t0);
        // Retries first (same Idempotency-Key, fresh assertion): what a client does after a
        // dropped connection. Then new requests, all at once.
        const batch: Sent[] = [
          ...unanswered,
          ...Array.from({ length: PER_CYCLE }, (_, i) => ({
            agent: agents[i % agents.length]!,
            key: `r3-${cycle}-${i}`,
            body: allowBody(cycle * 10 + i),
          })),
        ];
        retriedAfterCrash += unanswered.length;
        unanswered = [];
        // Several rounds of new requests, so hit counts above 1 are reached. A request left
        // unanswered by the kill is retried once, at the next start.
        for (
          let round = 0;
          round < 3 && instance.child.exitCode === null && instance.child.signalCode === null;
          round++
        ) {
          const sending =
            round === 0
              ? batch
              : batch.slice(-PER_CYCLE).map((s) => ({ ...s, key: `${s.key}-r${round}`, retry: false }));
          const answers = await Promise.all(
            sending.map(async (s) => {
              try {
                const res = await fetch(`${instance.url}/v1/access-requests`, {
                  method: 'POST',
                  headers: {
                    authorization: `Bearer ${await s.agent.assertion()}`,
                    'content-type': 'application/json',
                    'idempotency-key': s.key,
                  },
                  body: JSON.stringify(s.body),
                });
                return { s, status: res.status, json: (await res.json()) as any };
              } catch {
                return { s, status: 0, json: null };
              }
            }),
          );
          for (const a of answers) {
            if (a.status === 0) {
              if (!a.s.retry) unanswered.push({ ...a.s, retry: true });
              continue;
            }
            // On a 5xx, the server's own log says why.
            if (a.status >= 500)
              expect.fail(`${a.status} ${JSON.stringify(a.json)}\n${instance.log().slice(-4000)}`);
            if (a.status === 200) replayed++;
            const token = a.json?.credential?.access_token;
            if (typeof token === 'string') {
              received.push({
                requestId: a.json.id,
                leaseId: a.json.credential.lease_id,
                credentialId: jwtId(token),
                key: a.s.key,
              });
            }
          }
        }
        // The process must be dead (the failpoint fired), or is stopped by us if it was not reached.
        const exited = new Promise((ok) => {
          if (instance.child.exitCode !== null || instance.child.signalCode !== null) ok(null);
          else instance.child.once('exit', ok);
        });
        const timer = setTimeout(() => instance.child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
        if (instance.child.signalCode === 'SIGKILL') {
          kills++;
          byFailpoint[name] = (byFailpoint[name] ?? 0) + 1;
        }
        checkFile();
        if (kills % 20 === 0 && instance.child.signalCode === 'SIGKILL') {
          // Progress for the long tier: the figures so far, each line checked like the last.
          console.log(
            JSON.stringify({
              goal: 'R3',
              progress: true,
              kills,
              received: received.length,
              chain_checks: chainChecks,
              seconds: (Date.now() - started) / 1000,
            }),
          );
        }
      }
      const leases = checkFile();
      // The CLI verifier agrees on the final file.
      const verify = await cliAsync(home, ['audit', 'verify'], { DATABASE_URL: '' });
      expect(verify.code, verify.stderr).toBe(0);
      readyMs.sort((a, b) => a - b);
      const summary = {
        goal: 'R3',
        kills,
        cycles: cycle,
        by_failpoint: byFailpoint,
        credentials_received: received.length,
        credentials_without_audit: 0,
        double_issuance: 0,
        leases_committed: leases,
        retried_after_crash: retriedAfterCrash,
        idempotent_replays: replayed,
        chain_verified_after_kills: chainChecks,
        restart_to_ready_ms: {
          p50: readyMs[Math.floor(readyMs.length / 2)],
          max: readyMs[readyMs.length - 1],
        },
        seconds: (Date.now() - started) / 1000,
      };
      console.log(JSON.stringify(summary));
      expect(kills).toBeGreaterThanOrEqual(KILLS);
      expect(Object.keys(byFailpoint).sort()).toEqual([...FAILPOINTS].sort());
      expect(received.length).toBeGreaterThan(0);
    },
    4 * 3_600_000,
  );
});
