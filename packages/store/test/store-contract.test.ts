/**
 * The store contract, one suite looped over every adapter: SQLite, and PostgreSQL on the
 * machine's server (a database of its own per test, at READ COMMITTED as it runs). Invariants
 * must hold under concurrency, not just in sequence.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AccessRequestRecord,
  type CommitAccessRequestArgs,
  CountersignError,
  type Decision,
  type LeaseRecord,
  runUnit,
  type Store,
  verifyAuditChain,
} from '@countersign/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../src/index.js';
import { PostgresStore } from '../src/postgres-entry.js';
import { createTestDatabase } from './support/pg-database.js';

let counter = 0;
const ids = { next: (prefix: string) => `${prefix}_${process.pid}_${++counter}` };

interface Adapter {
  name: string;
  open(): Promise<{ store: Store; cleanup(): Promise<void> }>;
}

function postgres(): Adapter {
  return {
    name: 'postgres',
    async open() {
      const db = await createTestDatabase();
      try {
        const store = await PostgresStore.open({ url: db.url, ids, poolMax: 8, acquireTimeoutMs: 30_000 });
        return {
          store,
          async cleanup() {
            try {
              await store.close();
            } finally {
              await db.drop();
            }
          },
        };
      } catch (error) {
        await db.drop();
        throw error;
      }
    },
  };
}

const adapters: Adapter[] = [
  ...(['inline', 'thread'] as const).map((writer) => ({
    // The SQLite writer on the calling thread (CLI) and on its own thread (the server).
    name: `sqlite (writer ${writer})`,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'countersign-store-'));
      const store = SqliteStore.open({ file: join(dir, 'test.db'), ids, writer });
      return {
        store,
        async cleanup() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  })),
  postgres(),
];

const decision: Decision = {
  outcome: 'review',
  determiningPolicies: [],
  reasons: [],
  obligations: { maxTtlSeconds: 60, approvals: 1, reviewerGroup: 'g', deadlineSeconds: 60, separation: [] },
  policyVersion: 'sha256:x',
  errorCode: null,
};

function request(id: string, overrides: Partial<AccessRequestRecord> = {}): AccessRequestRecord {
  return {
    id,
    agentId: 'agent-1',
    action: 'write',
    resource: 'postgres://prod/x',
    taskId: 'task-1',
    status: 'pending',
    digest: 'sha256:d',
    canonical: '{}',
    decision,
    risk: { score: 1, factors: [] },
    idempotencyKey: null,
    bodyHash: 'b',
    createdAt: 1,
    decidedAt: null,
    deadlineAt: 1000,
    leaseId: null,
    cnfJkt: null,
    ...overrides,
  };
}

function lease(id: string, requestId: string, overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    id,
    requestId,
    agentId: 'agent-1',
    taskId: 'task-1',
    kind: 'access_token',
    credentialId: id,
    fingerprint: 'sha256:f',
    audience: 'a',
    scope: {},
    issuedAt: 1,
    expiresAt: 2,
    status: 'active',
    revokedAt: null,
    revokeReason: null,
    cnfJkt: null,
    deliveredAt: 1,
    issuer: 'access_token',
    action: 'write',
    resource: 'postgres://prod/x',
    revokeAttempts: 0,
    nextRevokeAt: null,
    claimedUntil: null,
    lastRevokeError: null,
    revokeConfirmedAt: null,
    ...overrides,
  };
}

for (const adapter of adapters) {
  describe(`store contract: ${adapter.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await adapter.open());
    });
    afterEach(async () => cleanup());

    it('H3 32 concurrent finishes of one pending request: exactly one wins', async () => {
      await store.transaction((tx) => tx.insertRequest(request('r1')));
      const statuses = ['allowed', 'denied', 'expired', 'withdrawn'] as const;
      const results = await Promise.all(
        Array.from({ length: 32 }, (_, i) =>
          store.transaction((tx) => tx.finishPendingRequest('r1', statuses[i % 4]!, 5, null)),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const final = await store.read((tx) => tx.getRequest('r1'));
      expect(final?.status).toBe(statuses[results.indexOf(true) % 4]);
    });

    it('A1 a token id is consumed once, even by concurrent units', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          store.transaction((tx) => tx.consumeTokenId('agent-1', 'jti-1', 10)),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.transaction((tx) => tx.consumeTokenId('agent-2', 'jti-1', 10))).toBe(true);
    });

    it('B13 a workload identity binds one agent, even under 16 concurrent registrations; keyless agents coexist', async () => {
      const agent = (id: string) => ({
        id,
        owner: 'o',
        boundary: 'b',
        environment: 'production',
        trustTier: 'standard',
        status: 'active' as const,
        publicJwk: null,
        jwkThumbprint: null,
        createdAt: 1,
        expiresAt: null,
        lastSeenAt: null,
      });
      const results = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.insertAgent(agent(`bot-${i}`));
            await tx.insertWorkloadIdentity({
              issuer: 'https://k8s',
              subject: 'sa',
              agentId: `bot-${i}`,
              createdAt: 1,
            });
          }),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results.filter((x) => x.status === 'rejected')) {
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'CS_IDENTITY_EXISTS' });
      }
      // The losers rolled back whole: their agent rows are gone too.
      expect(await store.listAgents()).toHaveLength(1);
      const winner = (await store.listAgents())[0]!.id;
      expect((await store.read((tx) => tx.getAgentByWorkloadIdentity('https://k8s', 'sa')))?.id).toBe(winner);
      expect(await store.read((tx) => tx.getAgentByWorkloadIdentity('https://k8s', 'other'))).toBeNull();
      expect(await store.read((tx) => tx.listWorkloadIdentities(winner))).toEqual([
        { issuer: 'https://k8s', subject: 'sa', agentId: winner, createdAt: 1 },
      ]);
      await store.transaction((tx) => tx.insertAgent(agent('keyless-2')));
      await store.transaction((tx) => tx.touchAgent('keyless-2', 100));
      await store.transaction((tx) => tx.touchAgent('keyless-2', 40));
      expect((await store.read((tx) => tx.getAgent('keyless-2')))?.lastSeenAt).toBe(100);
    });

    it('B8 the DPoP binding round-trips on requests and leases', async () => {
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('r9', { status: 'allowed', cnfJkt: 'jkt-1' }));
        await tx.insertLease(lease('l9', 'r9', { cnfJkt: 'jkt-1' }));
      });
      expect((await store.read((tx) => tx.getRequest('r9')))?.cnfJkt).toBe('jkt-1');
      expect((await store.read((tx) => tx.getLease('l9')))?.cnfJkt).toBe('jkt-1');
    });

    it('INV-3 one lease per request: a second lease for the same request fails the whole unit', async () => {
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('r1', { status: 'allowed' }));
        await tx.insertLease(lease('l1', 'r1'));
      });
      await expect(
        store.transaction(async (tx) => {
          await tx.appendAudit({ type: 'x', actor: { type: 'system', id: 't' }, data: {} }, 1);
          await tx.insertLease(lease('l2', 'r1'));
        }),
      ).rejects.toMatchObject({ code: 'CS_STORE_UNAVAILABLE' });
      // The audit event of the failed unit was rolled back with it.
      const events = [];
      for await (const e of store.auditEvents()) events.push(e);
      expect(events).toHaveLength(0);
      expect(await store.read((tx) => tx.getLease('l2'))).toBeNull();
    });

    it('a failing unit in a group commit rolls back alone; its neighbours commit', async () => {
      const outcomes = await Promise.allSettled([
        store.transaction((tx) => tx.insertRequest(request('a'))),
        store.transaction(async (tx) => {
          await tx.insertRequest(request('b'));
          throw new CountersignError('CS_REQUEST_CLOSED', 'no');
        }),
        store.transaction((tx) => tx.insertRequest(request('c'))),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((outcomes[1] as PromiseRejectedResult).reason.code).toBe('CS_REQUEST_CLOSED');
      expect(await store.read((tx) => tx.getRequest('a'))).not.toBeNull();
      expect(await store.read((tx) => tx.getRequest('b'))).toBeNull();
      expect(await store.read((tx) => tx.getRequest('c'))).not.toBeNull();
    });

    it('I3 200 concurrent audit appends form one linear chain that verifies', async () => {
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          store.transaction((tx) =>
            tx.appendAudit(
              { type: 'test.event', actor: { type: 'system', id: 't' }, data: { i, text: `é ${i} \u202e` } },
              i,
            ),
          ),
        ),
      );
      const events = [];
      for await (const e of store.auditEvents()) events.push(e);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(verifyAuditChain(events)).toMatchObject({ ok: true, count: 200 });
    });

    it('idempotency keys are unique per agent', async () => {
      await store.transaction((tx) => tx.insertRequest(request('r1', { idempotencyKey: 'k' })));
      await expect(
        store.transaction((tx) => tx.insertRequest(request('r2', { idempotencyKey: 'k' }))),
      ).rejects.toMatchObject({
        code: 'CS_IDEMPOTENCY_IN_FLIGHT',
      });
      await store.transaction((tx) =>
        tx.insertRequest(request('r3', { idempotencyKey: 'k', agentId: 'agent-2' })),
      );
      expect((await store.read((tx) => tx.findRequestByIdempotencyKey('agent-1', 'k')))?.id).toBe('r1');
    });

    it('revokeLeases revokes each active lease once and reports it', async () => {
      await store.transaction(async (tx) => {
        for (const [l, t] of [
          ['l1', 'task-1'],
          ['l2', 'task-1'],
          ['l3', 'task-2'],
        ] as const) {
          await tx.insertRequest(request(`r-${l}`, { status: 'allowed', taskId: t }));
          await tx.insertLease(lease(l, `r-${l}`, { taskId: t }));
        }
      });
      const first = await store.transaction((tx) =>
        tx.revokeLeases({ agentId: 'agent-1', taskId: 'task-1' }, 9, 'task_completed'),
      );
      expect(first.map((l) => l.id).sort()).toEqual(['l1', 'l2']);
      const again = await store.transaction((tx) =>
        tx.revokeLeases({ agentId: 'agent-1', taskId: 'task-1' }, 9, 'task_completed'),
      );
      expect(again).toEqual([]);
      expect((await store.read((tx) => tx.getLease('l3')))?.status).toBe('active');
      const all = await store.transaction((tx) =>
        tx.revokeLeases({ agentId: 'agent-1' }, 10, 'agent_suspended'),
      );
      expect(all.map((l) => l.id)).toEqual(['l3']);
    });

    it('revokeLeases sends leases of downstream issuers to revoke_pending, and unclaimed intents straight to revoked', async () => {
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('r-a', { status: 'allowed' }));
        await tx.insertLease(lease('a', 'r-a', { issuer: 'pg' }));
        await tx.insertRequest(request('r-b', { status: 'allowed' }));
        await tx.insertLease(lease('b', 'r-b', { issuer: 'pg', status: 'issuing', deliveredAt: null }));
        await tx.insertRequest(request('r-c', { status: 'allowed' }));
        await tx.insertLease(lease('c', 'r-c'));
      });
      const ended = await store.transaction((tx) => tx.revokeLeases({ agentId: 'agent-1' }, 5, 'x', ['pg']));
      const by = Object.fromEntries(ended.map((l) => [l.id, l.status]));
      expect(by).toEqual({ a: 'revoke_pending', b: 'revoked', c: 'revoked' });
      expect(await store.read((tx) => tx.listDueRevocations(5, 10))).toMatchObject([{ id: 'a' }]);
      expect(await store.read((tx) => tx.countLeases({ status: 'revoke_pending' }))).toBe(1);
    });

    it('H3 a due revocation is claimed by exactly one of 20 concurrent reapers, and only its holder records a failure', async () => {
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('r-a', { status: 'allowed' }));
        await tx.insertLease(lease('a', 'r-a', { issuer: 'pg' }));
        await tx.revokeLeases({ leaseId: 'a' }, 10, 'x', ['pg']);
      });
      const claims = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.transaction((tx) => tx.claimRevocation('a', `reaper-${i}`, 10, 70)),
        ),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      const holder = `reaper-${claims.indexOf(true)}`;
      // Claimed: not due for anyone else until the claim lapses.
      expect(await store.read((tx) => tx.listDueRevocations(20, 10))).toEqual([]);
      expect(await store.transaction((tx) => tx.failRevocation('a', 'someone-else', 1, 30, 'E'))).toBe(false);
      expect(await store.transaction((tx) => tx.failRevocation('a', holder, 1, 30, 'ECONNREFUSED'))).toBe(
        true,
      );
      expect(await store.read((tx) => tx.countLeases({ status: 'revoke_pending', failing: true }))).toBe(1);
      // Backed off until 30; then claimable again, and a lapsed claim can be taken over.
      expect(await store.read((tx) => tx.listDueRevocations(29, 10))).toEqual([]);
      expect(await store.transaction((tx) => tx.claimRevocation('a', 'r1', 30, 90))).toBe(true);
      expect(await store.transaction((tx) => tx.claimRevocation('a', 'r2', 60, 120))).toBe(false);
      expect(await store.transaction((tx) => tx.claimRevocation('a', 'r2', 90, 150))).toBe(true);
      expect(await store.transaction((tx) => tx.confirmRevocation('a', 100))).toBe(true);
      expect(await store.transaction((tx) => tx.confirmRevocation('a', 101))).toBe(false);
      expect(await store.read((tx) => tx.getLease('a'))).toMatchObject({
        status: 'revoked',
        revokeAttempts: 1,
        lastRevokeError: 'ECONNREFUSED',
        revokeConfirmedAt: 100,
        claimedUntil: null,
      });
    });

    it('H1 an intent activates once, and only while it is still issuing', async () => {
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('r-a', { status: 'allowed' }));
        await tx.insertLease(lease('a', 'r-a', { issuer: 'pg', status: 'issuing', deliveredAt: null }));
      });
      const claims = await Promise.all(
        Array.from({ length: 10 }, () => store.transaction((tx) => tx.markLeaseDelivered('a', 3))),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await store.read((tx) => tx.listStaleIntents(4, 10))).toMatchObject([{ id: 'a' }]);
      expect(await store.transaction((tx) => tx.activateLease('a', 'sha256:x', 4))).toBe(true);
      expect(await store.transaction((tx) => tx.activateLease('a', 'sha256:y', 4))).toBe(false);
      expect(await store.read((tx) => tx.getLease('a'))).toMatchObject({
        status: 'active',
        fingerprint: 'sha256:x',
      });
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('r-b', { status: 'allowed' }));
        await tx.insertLease(lease('b', 'r-b', { issuer: 'pg', status: 'issuing', deliveredAt: 3 }));
        await tx.revokeLeases({ leaseId: 'b' }, 5, 'task_completed', ['pg']);
      });
      expect(await store.transaction((tx) => tx.activateLease('b', 'sha256:z', 6))).toBe(false);
      expect((await store.read((tx) => tx.getLease('b')))?.status).toBe('revoke_pending');
      expect(await store.transaction((tx) => tx.markLeaseDelivered('b', 6))).toBe(false);
    });

    it('listExpiredLeases finds live leases of the named issuers past their TTL', async () => {
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('r-a', { status: 'allowed' }));
        await tx.insertLease(lease('a', 'r-a', { issuer: 'pg', expiresAt: 10 }));
        await tx.insertRequest(request('r-b', { status: 'allowed' }));
        await tx.insertLease(lease('b', 'r-b', { issuer: 'access_token', expiresAt: 10 }));
        await tx.insertRequest(request('r-c', { status: 'allowed' }));
        await tx.insertLease(lease('c', 'r-c', { issuer: 'pg', expiresAt: 20 }));
      });
      expect((await store.read((tx) => tx.listExpiredLeases(['pg'], 10, 10))).map((l) => l.id)).toEqual([
        'a',
      ]);
      expect(await store.read((tx) => tx.listExpiredLeases([], 10, 10))).toEqual([]);
      expect(
        await store.transaction((tx) => tx.endLease('a', 'active', 'revoke_pending', 11, 'expired')),
      ).toBe(true);
      expect(await store.transaction((tx) => tx.endLease('a', 'active', 'revoked', 11, 'expired'))).toBe(
        false,
      );
      expect((await store.read((tx) => tx.listExpiredLeases(['pg'], 30, 10))).map((l) => l.id)).toEqual([
        'c',
      ]);
      const listed = await store.read((tx) => tx.listLeases({ statuses: ['revoke_pending', 'active'] }, 10));
      expect(listed.map((l) => l.id).sort()).toEqual(['a', 'b', 'c']);
      expect(await store.read((tx) => tx.listLeases({ statuses: [] }, 10))).toEqual([]);
    });

    it('tasks: heartbeats upsert; idle tasks are those that heartbeated and have not ended', async () => {
      await store.transaction(async (tx) => {
        await tx.recordHeartbeat('a', 't1', 1);
        await tx.recordHeartbeat('a', 't1', 5);
        await tx.recordHeartbeat('a', 't2', 2);
        await tx.recordHeartbeat('b', 't3', 2);
      });
      expect(await store.read((tx) => tx.getTask('a', 't1'))).toEqual({
        agentId: 'a',
        taskId: 't1',
        outcome: null,
        endedAt: null,
        reason: null,
        lastHeartbeatAt: 5,
      });
      await store.transaction((tx) => tx.completeTask('b', 't3', 3, 'failed', 'boom'));
      expect(await store.read((tx) => tx.listIdleTasks(4, 10))).toEqual([
        { agentId: 'a', taskId: 't2', lastHeartbeatAt: 2 },
      ]);
      expect(await store.read((tx) => tx.getTask('b', 't3'))).toMatchObject({
        outcome: 'failed',
        reason: 'boom',
      });
      expect(await store.read((tx) => tx.getTask('b', 'none'))).toBeNull();
    });

    it('a replayed token id and a second task completion are plain answers: the unit goes on and commits', async () => {
      const done = await store.transaction(async (tx) => {
        expect(await tx.consumeTokenId('agent-1', 'jti-x', 10)).toBe(true);
        expect(await tx.consumeTokenId('agent-1', 'jti-x', 10)).toBe(false);
        expect(await tx.completeTask('agent-1', 'task-x', 1)).toBe(true);
        expect(await tx.completeTask('agent-1', 'task-x', 1)).toBe(false);
        await tx.insertRequest(request('after'));
        await tx.appendAudit({ type: 'x', actor: { type: 'system', id: 't' }, data: {} }, 1);
        return 'committed';
      });
      expect(done).toBe('committed');
      expect(await store.read((tx) => tx.getRequest('after'))).not.toBeNull();
    });

    it('completeTask is a compare-and-set', async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, () => store.transaction((tx) => tx.completeTask('a', 't', 1))),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.read((tx) => tx.isTaskCompleted('a', 't'))).toBe(true);
    });

    const agentRecord = (id: string, status: 'active' | 'suspended' = 'active') => ({
      id,
      owner: 'o',
      boundary: 'b',
      environment: 'e',
      trustTier: 'standard',
      status,
      publicJwk: { kty: 'OKP' },
      jwkThumbprint: `tp-${id}`,
      createdAt: 1,
      expiresAt: null,
      lastSeenAt: null,
    });
    const commitArgs = (id: string, jti: string, withLease: boolean): CommitAccessRequestArgs => ({
      assertion: {
        agentId: 'agent-1',
        oneTimeIds: [{ namespace: 'jwt-bearer:agent-1', id: jti, expiresAt: 10_000 }],
        seenAt: null,
        dpopJkt: null,
      },
      record: request(id, {
        status: withLease ? 'allowed' : 'pending',
        leaseId: withLease ? `l-${id}` : null,
      }),
      events: [
        { type: 'access_request.received', actor: { type: 'agent', id: 'agent-1' }, requestId: id, data: {} },
        {
          type: 'access_request.decided',
          actor: { type: 'system', id: 'c' },
          requestId: id,
          data: { i: id },
        },
      ],
      outbox: [],
      lease: withLease ? lease(`l-${id}`, id) : null,
      now: 5,
      maxPending: null,
    });
    async function events() {
      const all = [];
      for await (const e of store.auditEvents()) all.push(e);
      return all;
    }

    it("E1 the decision unit refuses a review over the agent's pending cap, audits it, and 30 concurrent units leave exactly the cap", async () => {
      await store.transaction((tx) => tx.insertAgent(agentRecord('agent-1')));
      const capped = (id: string) => ({ ...commitArgs(id, `jti-${id}`, false), maxPending: 4 });
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => runUnit(store, 'commitAccessRequest', capped(`c${i}`))),
      );
      expect(results.filter((r) => r.recorded)).toHaveLength(4);
      for (const r of results.filter((x) => !x.recorded))
        expect(r).toEqual({ recorded: false, code: 'CS_TOO_MANY_PENDING', pending: 4 });
      expect(await store.read((tx) => tx.countPendingRequests('agent-1', 5))).toBe(4);
      // The cap is per agent: another agent's count does not include these.
      expect(await store.read((tx) => tx.countPendingRequests('agent-2', 5))).toBe(0);
      // Past their deadline (1000), pending reviews no longer count.
      expect(await store.read((tx) => tx.countPendingRequests('agent-1', 1000))).toBe(0);
      const chain = await events();
      expect(chain.filter((e) => e.type === 'access_request.refused')).toHaveLength(26);
      expect(chain.filter((e) => e.type === 'access_request.received')).toHaveLength(4);
      // A refused unit still spends its assertion (a replay gets nothing more).
      const refusedIndex = results.findIndex((r) => !r.recorded);
      await expect(runUnit(store, 'commitAccessRequest', capped(`c${refusedIndex}`))).rejects.toMatchObject({
        code: 'CS_TOKEN_REPLAYED',
      });
      expect(verifyAuditChain(chain)).toMatchObject({ ok: true });
    });

    it('requests and votes since a time, evidence views once per reviewer, shadow decisions once per request', async () => {
      await store.transaction(async (tx) => {
        await tx.insertRequest(request('t1', { createdAt: 10 }));
        await tx.insertRequest(request('t2', { createdAt: 20 }));
        await tx.insertRequest(request('t3', { createdAt: 30 }));
        for (const [r, at] of [
          ['t1', 15],
          ['t2', 25],
        ] as const)
          await tx.insertVote({
            requestId: r,
            reviewerId: 'rev-1',
            verdict: 'approve',
            assertionHash: 'h',
            credentialId: 'c',
            createdAt: at,
          });
      });
      expect((await store.read((tx) => tx.listRequestsSince(20, 10))).map((r) => r.id)).toEqual(['t2', 't3']);
      expect((await store.read((tx) => tx.listRequestsSince(0, 2))).map((r) => r.id)).toEqual(['t1', 't2']);
      expect((await store.read((tx) => tx.listVotesSince(20, 10))).map((v) => v.requestId)).toEqual(['t2']);
      // Rows at the same instant come back in a fixed order, so a limit cuts the same rows on either database.
      await store.transaction(async (tx) => {
        for (const reviewerId of ['rev-3', 'rev-2'])
          await tx.insertVote({
            requestId: 't3',
            reviewerId,
            verdict: 'approve',
            assertionHash: 'h',
            credentialId: 'c',
            createdAt: 35,
          });
      });
      expect((await store.read((tx) => tx.listVotesSince(35, 1))).map((v) => v.reviewerId)).toEqual([
        'rev-2',
      ]);

      const view = { requestId: 't1', reviewerId: 'rev-1', viewedAt: 12 };
      const first = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          store.transaction((tx) => tx.recordEvidenceView({ ...view, viewedAt: 12 + i })),
        ),
      );
      expect(first.filter(Boolean)).toHaveLength(1);
      expect(await store.read((tx) => tx.listEvidenceViews(0, 10))).toHaveLength(1);
      expect(await store.read((tx) => tx.listEvidenceViews(100, 10))).toEqual([]);

      const shadow = {
        requestId: 't1',
        agentId: 'agent-1',
        action: 'write',
        resource: 'postgres://prod/x',
        activeVersion: 'sha256:a',
        activeOutcome: 'review' as const,
        activeGroup: 'g',
        candidateVersion: 'sha256:b',
        candidateOutcome: 'allow' as const,
        candidateGroup: null,
        candidatePolicies: ['p1', 'p2'],
        createdAt: 40,
      };
      expect(await store.transaction((tx) => tx.insertShadowDecision(shadow))).toBe(true);
      expect(
        await store.transaction((tx) => tx.insertShadowDecision({ ...shadow, candidateOutcome: 'deny' })),
      ).toBe(false);
      expect(
        await store.transaction((tx) =>
          tx.insertShadowDecision({ ...shadow, requestId: 't2', createdAt: 50 }),
        ),
      ).toBe(true);
      const listed = await store.read((tx) => tx.listShadowDecisions(0, 10));
      expect(listed.map((d) => d.requestId)).toEqual(['t2', 't1']);
      await store.transaction((tx) => tx.insertShadowDecision({ ...shadow, requestId: 't3', createdAt: 50 }));
      expect((await store.read((tx) => tx.listShadowDecisions(50, 1))).map((d) => d.requestId)).toEqual([
        't3',
      ]);
      expect(listed[1]).toEqual(shadow);
    });

    it('INV-1 the decision unit writes the request, its events and its lease together, or nothing', async () => {
      await store.transaction((tx) => tx.insertAgent(agentRecord('agent-1')));
      await runUnit(store, 'commitAccessRequest', commitArgs('r1', 'jti-1', true));
      expect((await store.read((tx) => tx.getRequest('r1')))?.status).toBe('allowed');
      expect((await store.read((tx) => tx.getLease('l-r1')))?.requestId).toBe('r1');
      expect((await events()).map((e) => e.type)).toEqual([
        'access_request.received',
        'access_request.decided',
        'lease.issued',
      ]);
      // A replayed assertion: nothing of the second request is written.
      await expect(
        runUnit(store, 'commitAccessRequest', commitArgs('r2', 'jti-1', true)),
      ).rejects.toMatchObject({
        code: 'CS_TOKEN_REPLAYED',
      });
      expect(await store.read((tx) => tx.getRequest('r2'))).toBeNull();
      expect(await store.read((tx) => tx.getLease('l-r2'))).toBeNull();
      expect(await events()).toHaveLength(3);
      // A suspension that committed first wins, and the assertion is not spent by the failure.
      await store.transaction((tx) => tx.setAgentStatus('agent-1', 'active', 'suspended'));
      await expect(
        runUnit(store, 'commitAccessRequest', commitArgs('r3', 'jti-3', true)),
      ).rejects.toMatchObject({
        code: 'CS_AGENT_SUSPENDED',
      });
      expect(await store.read((tx) => tx.getLease('l-r3'))).toBeNull();
      expect(await store.transaction((tx) => tx.consumeTokenId('jwt-bearer:agent-1', 'jti-3', 10))).toBe(
        true,
      );
    });

    it('I3 named and closure units interleaved in group commits keep one chain; failures roll back alone', async () => {
      await store.transaction((tx) => tx.insertAgent(agentRecord('agent-1')));
      const work = Array.from({ length: 120 }, (_, i) => {
        if (i % 3 === 0) {
          return store.transaction((tx) =>
            tx.appendAudit({ type: 'closure', actor: { type: 'system', id: 't' }, data: { i } }, i),
          );
        }
        // Every fifth named unit reuses a jti and must fail alone.
        const jti = i % 5 === 0 ? 'jti-dup' : `jti-${i}`;
        return runUnit(store, 'commitAccessRequest', commitArgs(`r${i}`, jti, i % 2 === 0));
      });
      const outcomes = await Promise.allSettled(work);
      const failed = outcomes.filter((o) => o.status === 'rejected');
      // jti-dup is used by the named units at i = 5, 10, 20, ... (not multiples of 3): one wins.
      const dupUsers = Array.from({ length: 120 }, (_, i) => i).filter((i) => i % 3 !== 0 && i % 5 === 0);
      expect(failed).toHaveLength(dupUsers.length - 1);
      for (const f of failed) expect((f as PromiseRejectedResult).reason.code).toBe('CS_TOKEN_REPLAYED');
      const chain = await events();
      expect(verifyAuditChain(chain)).toMatchObject({ ok: true, count: chain.length });
      expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: chain.length }, (_, i) => i + 1));
    });

    it('H2 a due notification is claimed by exactly one of 10 concurrent claimers, and is due again when the claim runs out', async () => {
      await store.transaction((tx) =>
        tx.insertOutbox({
          id: 'msg_1',
          subscriber: 'hook',
          type: 'review.requested',
          requestId: 'r1',
          payload: { type: 'review.requested' },
          attempts: 0,
          nextAttemptAt: 100,
          deliveredAt: null,
          failedAt: null,
          lastError: null,
          createdAt: 100,
        }),
      );
      const [due] = await store.read((tx) => tx.listDueOutbox(150, 10));
      expect(due?.nextAttemptAt).toBe(100);
      const claims = await Promise.all(
        Array.from({ length: 10 }, () => store.transaction((tx) => tx.claimOutbox('msg_1', 100, 1000))),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await store.read((tx) => tx.listDueOutbox(999, 10))).toEqual([]);
      expect((await store.read((tx) => tx.listDueOutbox(1000, 10))).map((o) => o.id)).toEqual(['msg_1']);
      expect(await store.transaction((tx) => tx.markOutboxDelivered('msg_1', 1001))).toBe(true);
      expect(await store.transaction((tx) => tx.claimOutbox('msg_1', 1000, 5000))).toBe(false);
    });

    it('the change feed lists requests named by chosen event types after a sequence number', async () => {
      expect(await store.read((tx) => tx.auditHeadSeq())).toBe(0);
      const actor = { type: 'system' as const, id: 't' };
      await store.transaction(async (tx) => {
        await tx.appendAudit({ type: 'review.opened', actor, requestId: 'r1', data: {} }, 1);
        await tx.appendAudit({ type: 'lease.issued', actor, requestId: 'r2', data: {} }, 1);
        await tx.appendAudit({ type: 'policy.loaded', actor, data: {} }, 1);
        await tx.appendAudit({ type: 'review.decided', actor, requestId: 'r3', data: {} }, 1);
      });
      const head = await store.read((tx) => tx.auditHeadSeq());
      expect(head).toBe(4);
      const types = ['review.opened', 'review.decided'];
      expect(await store.read((tx) => tx.listRequestChanges(0, head, types, 10))).toEqual([
        { seq: 1, requestId: 'r1' },
        { seq: 4, requestId: 'r3' },
      ]);
      expect(await store.read((tx) => tx.listRequestChanges(1, 3, types, 10))).toEqual([]);
      expect(await store.read((tx) => tx.listRequestChanges(0, head, types, 1))).toEqual([
        { seq: 1, requestId: 'r1' },
      ]);
    });

    it("H6 lockAgent serializes a lease grant with its task's completion: never a live lease for a completed task", async () => {
      const agent = {
        id: 'agent-1',
        owner: 'o',
        boundary: 'b',
        environment: 'e',
        trustTier: 't',
        status: 'active' as const,
        publicJwk: {},
        jwkThumbprint: 'tp',
        createdAt: 1,
        expiresAt: null,
        lastSeenAt: null,
      };
      await store.transaction((tx) => tx.insertAgent(agent));
      const pause = () => new Promise((r) => setTimeout(r, Math.random() * 5));
      const rounds = 20;
      await Promise.all(
        Array.from({ length: rounds }, (_, i) => [
          // Grant: checks the task is open, then issues a lease for it.
          store
            .transaction(async (tx) => {
              expect((await tx.lockAgent('agent-1'))?.status).toBe('active');
              if (await tx.isTaskCompleted('agent-1', `t${i}`)) return;
              await pause();
              await tx.insertRequest(request(`r${i}`, { status: 'allowed', taskId: `t${i}` }));
              await tx.insertLease(lease(`l${i}`, `r${i}`, { taskId: `t${i}`, expiresAt: 10_000 }));
            })
            .catch(() => undefined),
          // Completion: marks the task done, then revokes the task's leases it can see.
          store.transaction(async (tx) => {
            await tx.lockAgent('agent-1');
            await tx.completeTask('agent-1', `t${i}`, 5);
            await pause();
            await tx.revokeLeases({ agentId: 'agent-1', taskId: `t${i}` }, 5, 'task_completed');
          }),
        ]).flat(),
      );
      for (let i = 0; i < rounds; i++) {
        const l = await store.read((tx) => tx.getLease(`l${i}`));
        expect(l === null || l.status === 'revoked', `lease l${i}`).toBe(true);
      }
    });

    it('H6 lockRequest serializes votes: a tally sees every earlier vote, so a met quorum always ends the review', async () => {
      const rounds = 10;
      for (let i = 0; i < rounds; i++) await store.transaction((tx) => tx.insertRequest(request(`q${i}`)));
      await Promise.all(
        Array.from({ length: rounds }, (_, i) =>
          ['alice', 'bob', 'carol'].map((reviewer) =>
            store
              .transaction(async (tx) => {
                const r = await tx.lockRequest(`q${i}`);
                if (r?.status !== 'pending') return;
                const earlier = await tx.listVotes(`q${i}`);
                await new Promise((ok) => setTimeout(ok, Math.random() * 5));
                await tx.insertVote({
                  requestId: `q${i}`,
                  reviewerId: reviewer,
                  verdict: 'approve',
                  assertionHash: 'h',
                  credentialId: 'c',
                  createdAt: 1,
                });
                if (earlier.length + 1 >= 2) await tx.finishPendingRequest(`q${i}`, 'allowed', 2, null);
              })
              .catch(() => undefined),
          ),
        ).flat(),
      );
      for (let i = 0; i < rounds; i++) {
        const votes = await store.read((tx) => tx.listVotes(`q${i}`));
        const r = await store.read((tx) => tx.getRequest(`q${i}`));
        // Exactly two votes got in: the second ended it, the third found it closed.
        expect(votes, `q${i}`).toHaveLength(2);
        expect(r?.status, `q${i}`).toBe('allowed');
      }
    });

    it('a closed store refuses work with CS_STORE_UNAVAILABLE', async () => {
      await store.close();
      await expect(store.transaction(async () => 1)).rejects.toMatchObject({ code: 'CS_STORE_UNAVAILABLE' });
    });
  });
}
