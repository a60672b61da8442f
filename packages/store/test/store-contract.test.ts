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
  CountersignError,
  type Decision,
  type LeaseRecord,
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
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'countersign-store-'));
      const store = SqliteStore.open({ file: join(dir, 'test.db'), ids });
      return {
        store,
        async cleanup() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
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
    deliveredAt: 1,
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
