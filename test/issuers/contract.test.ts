/**
 * The issuer contract (STYLE.md: one suite per port, looped over every adapter): every
 * credential kind is issued for a grant, dies at its TTL even if nobody calls, is revoked on
 * task completion, on agent suspension and on an admin's revoke, revokes idempotently, and a
 * failed downstream revocation is retried, counted and audited until confirmed.
 */
import { type LeaseRecord, leaseState, revokeLease, suspendAgent } from '@countersign/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, type TestAgent } from '../support/harness.js';
import { accessTokenKind, type KindDriver, postgresKind, proxyKind, sealedSecretKind } from './kinds.js';

/** The four kinds of DESIGN.md: token, database role, proxy, sealed secret. */
const KINDS: KindDriver[] = [accessTokenKind, postgresKind(), proxyKind(), sealedSecretKind()];

async function auditTypes(h: Harness, leaseId: string): Promise<string[]> {
  const types: string[] = [];
  for await (const e of h.server.deps.ctx.store.auditEvents()) {
    if (e.data.lease_id === leaseId) types.push(e.type);
  }
  return types;
}

const lease = (h: Harness, id: string) =>
  h.server.deps.ctx.store.read((tx) => tx.getLease(id)) as Promise<LeaseRecord>;

for (const kind of KINDS) {
  describe(`issuer contract: ${kind.kind}`, () => {
    let h: Harness;
    let agent: TestAgent;
    let task = 0;
    beforeEach(async () => {
      await kind.setup?.();
      h = await startHarness({ configure: (home) => kind.configure(home) });
      await kind.ready?.(h);
      agent = await h.addAgent('spiffe://acme.dev/agent/contract', { environment: 'staging' });
    });
    afterEach(async () => {
      await h.close();
      await kind.teardown?.();
    });

    async function issue(ttl = 300) {
      const taskId = `task-${++task}`;
      const { status, json } = await h.requestAccess(agent, {
        action: kind.action,
        resource: kind.resource,
        intent: { purpose: 'contract suite', task_id: taskId },
        ttl_seconds: ttl,
      });
      expect(status, JSON.stringify(json)).toBe(201);
      expect(json.status, JSON.stringify(json.decision)).toBe('allowed');
      expect(json.credential?.type).toBe(kind.kind);
      return { taskId, leaseId: json.lease_id as string, credential: json.credential as Record<string, any> };
    }

    it('issues a credential for a grant: it works, its lease is active and audited by fingerprint only', async () => {
      const { leaseId, credential } = await issue();
      expect(await kind.use(h, agent, credential)).toBe(true);
      const l = await lease(h, leaseId);
      expect(l).toMatchObject({
        status: 'active',
        kind: kind.kind,
        issuer: kind.issuer,
        resource: kind.resource,
      });
      expect(l.fingerprint).toMatch(/^(sha256|hmac-sha256):[0-9a-f]{64}$/);
      const types = await auditTypes(h, leaseId);
      expect(types).toContain('lease.issued');
      const chain: unknown[] = [];
      for await (const e of h.server.deps.ctx.store.auditEvents()) chain.push(e);
      const secrets = kind.secrets(credential);
      expect(secrets.length).toBeGreaterThan(0);
      for (const secret of secrets) {
        expect(secret.length).toBeGreaterThanOrEqual(16);
        expect(JSON.stringify(chain)).not.toContain(secret);
      }
    });

    it('C1 the credential dies at its TTL even if nobody calls', async () => {
      const { leaseId, credential } = await issue(60);
      expect(await kind.use(h, agent, credential)).toBe(true);
      h.clock.advance(61);
      await h.server.reapLeases();
      expect(await kind.use(h, agent, credential)).toBe(false);
      const l = await lease(h, leaseId);
      // Kinds with a downstream are ended by the reaper; the others are inactive at read time.
      if (h.server.deps.issuers.downstream.includes(kind.issuer)) {
        expect(l).toMatchObject({ status: 'revoked', revokeReason: 'expired' });
        expect(await auditTypes(h, leaseId)).toEqual(
          expect.arrayContaining(['lease.expired', 'lease.revoked']),
        );
      }
    });

    it('C1 R10 completing the task revokes it within one second', async () => {
      const { taskId, leaseId, credential } = await issue();
      expect(await kind.use(h, agent, credential)).toBe(true);
      const started = performance.now();
      const res = await h.call('POST', `/v1/tasks/${taskId}/complete`, { agent });
      expect(res.status).toBe(200);
      const body = (await res.json()) as any;
      expect(body.revoked_leases).toEqual([leaseId]);
      expect(body.pending_revocations).toEqual([]);
      expect(await kind.use(h, agent, credential)).toBe(false);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(await lease(h, leaseId)).toMatchObject({ status: 'revoked', revokeReason: 'task_completed' });
      expect(await auditTypes(h, leaseId)).toContain('lease.revoked');
    });

    it('B12 suspending the agent revokes it', async () => {
      const { leaseId, credential } = await issue();
      const result = await suspendAgent({
        ctx: h.server.deps.ctx,
        actor: { type: 'operator', id: 'test' },
        input: { agentId: agent.id },
      });
      expect(result.revokedLeases).toBe(1);
      expect(await h.server.deps.reaper.revokeNow(result.pendingRevocations)).toEqual([]);
      expect(await kind.use(h, agent, credential)).toBe(false);
      expect(await lease(h, leaseId)).toMatchObject({ status: 'revoked', revokeReason: 'agent_suspended' });
    });

    it('an admin revoke ends it, and revoking again changes nothing (idempotent)', async () => {
      const { leaseId, credential } = await issue();
      const ctx = h.server.deps.ctx;
      const actor = { type: 'operator' as const, id: 'test' };
      const first = await revokeLease({ ctx, actor, input: { leaseId, reason: 'revoked_by_admin' } });
      expect(first?.id).toBe(leaseId);
      await h.server.deps.reaper.revokeNow([leaseId]);
      expect(await kind.use(h, agent, credential)).toBe(false);
      const ended = await lease(h, leaseId);
      expect(ended).toMatchObject({ status: 'revoked', revokeReason: 'revoked_by_admin' });
      expect(await revokeLease({ ctx, actor, input: { leaseId, reason: 'revoked_by_admin' } })).toBeNull();
      // The issuer's own revoke is idempotent too: what is already gone revokes cleanly.
      const issuer = ctx.issuers.get(kind.issuer)!;
      await issuer.revoke(ended);
      await issuer.revoke(ended);
      const types = await auditTypes(h, leaseId);
      expect(types.filter((t) => t === 'lease.revoked')).toHaveLength(1);
    });

    it.runIf(kind.faults)(
      'C5 a failed downstream revocation stays revoke_pending, is counted, audited and retried until confirmed',
      async () => {
        const { taskId, leaseId } = await issue();
        await kind.faults!.break();
        const res = await h.call('POST', `/v1/tasks/${taskId}/complete`, { agent });
        expect(((await res.json()) as any).pending_revocations).toEqual([leaseId]);
        let l = await lease(h, leaseId);
        expect(l).toMatchObject({ status: 'revoke_pending', revokeAttempts: 1 });
        expect(l.lastRevokeError).toBeTruthy();
        const metrics = await (await h.call('GET', '/metrics')).text();
        expect(metrics).toMatch(/^countersign_revocations_failed 1$/m);
        // Backoff: not retried before it is due, retried (and failing again) after.
        await h.server.reapLeases();
        expect((await lease(h, leaseId)).revokeAttempts).toBe(1);
        h.clock.advance(2);
        await h.server.reapLeases();
        expect((await lease(h, leaseId)).revokeAttempts).toBe(2);
        // Countersign no longer honours the lease meanwhile (introspection, proxy, deliveries);
        // what exists downstream is bounded by its own expiry until the revocation lands.
        const state = await leaseState({ ctx: h.server.deps.ctx, input: { credentialId: l.credentialId } });
        expect(state.active).toBe(false);
        expect((await lease(h, leaseId)).status).toBe('revoke_pending');
        await kind.faults!.heal();
        h.clock.advance(5);
        const pass = await h.server.reapLeases();
        expect(pass.confirmed).toEqual([leaseId]);
        l = await lease(h, leaseId);
        expect(l.status).toBe('revoked');
        expect(l.revokeConfirmedAt).not.toBeNull();
        const types = await auditTypes(h, leaseId);
        expect(types.filter((t) => t === 'lease.revoke_failed')).toHaveLength(2);
        expect(types.at(-1)).toBe('lease.revoked');
        expect(await (await h.call('GET', '/metrics')).text()).toMatch(/^countersign_revocations_failed 0$/m);
      },
    );
  });
}
