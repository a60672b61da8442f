/**
 * reapLeases: one pass of the durable lease reaper. Every bit of its state is in the store, so
 * a restart loses nothing, and several instances may run it at once: each step is a
 * compare-and-set on one lease, and a downstream revocation is claimed (`claimed_until`)
 * before it is attempted. In order:
 *
 * 1. leases of downstream issuers whose TTL passed end (`lease.expired`): a database role's
 *    `VALID UNTIL` stops new logins but not open sessions, so the reaper must act;
 * 2. intents claimed for minting more than MINT_GRACE_SECONDS ago that never became active
 *    (a crash between minting and commit, THREATS.md H1) end (`lease.issue_abandoned`);
 * 3. tasks that heartbeated and then fell silent past the idle timeout are abandoned;
 * 4. every due `revoke_pending` lease is claimed and revoked downstream: confirmed ones become
 *    `revoked` (`lease.revoked`); failed ones stay pending with the attempt counted, the error
 *    class recorded (`lease.revoke_failed`) and the next attempt backed off. Never dropped,
 *    never marked revoked without the downstream's confirmation (THREATS.md C5).
 *
 * Expiry of leases without a downstream needs no pass: they are checked at read time.
 */
import { CountersignError } from '../errors.js';
import {
  MINT_GRACE_SECONDS,
  REVOCATION_CLAIM_SECONDS,
  revocationBackoffSeconds,
} from '../lease-lifecycle.js';
import type { LeaseRecord } from '../records.js';
import { SYSTEM } from './audit-helpers.js';
import type { DomainContext } from './context.js';
import { errorClass } from './end-leases.js';
import { endTask } from './end-task.js';
import { issuerActor } from './lease-record.js';

export interface ReapInput {
  /** This reaper's id (one per process): who holds a claim. */
  readonly instanceId: string;
  /** Only these leases (right after a task ended): the rest waits for the next pass. */
  readonly leaseIds?: readonly string[];
  readonly limit?: number;
}

export interface ReapResult {
  readonly expired: number;
  readonly abandonedIntents: number;
  readonly abandonedTasks: number;
  readonly confirmed: string[];
  readonly failed: string[];
}

export async function reapLeases({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: ReapInput;
}): Promise<ReapResult> {
  const limit = input.limit ?? 200;
  let expired = 0;
  let abandonedIntents = 0;
  let abandonedTasks = 0;
  if (!input.leaseIds) {
    const now = ctx.clock.now();
    const downstream = ctx.issuers.downstream;
    const due = downstream.length
      ? await ctx.store.read((tx) => tx.listExpiredLeases(downstream, now, limit))
      : [];
    for (const lease of due) if (await endOne(ctx, lease, 'expired', 'lease.expired')) expired++;
    const stale = await ctx.store.read((tx) => tx.listStaleIntents(now - MINT_GRACE_SECONDS * 1000, limit));
    for (const lease of stale)
      if (await endOne(ctx, lease, 'issue_abandoned', 'lease.issue_abandoned')) abandonedIntents++;
    if (ctx.taskIdleTimeoutSeconds !== null) {
      const idle = await ctx.store.read((tx) =>
        tx.listIdleTasks(now - ctx.taskIdleTimeoutSeconds! * 1000, limit),
      );
      for (const task of idle) {
        const r = await endTask(
          ctx,
          {
            agentId: task.agentId,
            taskId: task.taskId,
            outcome: 'abandoned',
            reason: `no heartbeat since ${new Date(task.lastHeartbeatAt).toISOString()}`,
          },
          SYSTEM,
        );
        if (!r.alreadyEnded) abandonedTasks++;
      }
    }
  }

  const now = ctx.clock.now();
  const candidates = input.leaseIds
    ? (await ctx.store.read(async (tx) => Promise.all(input.leaseIds!.map((id) => tx.getLease(id))))).filter(
        (l): l is LeaseRecord =>
          l !== null && l.status === 'revoke_pending' && (l.claimedUntil === null || l.claimedUntil <= now),
      )
    : await ctx.store.read((tx) => tx.listDueRevocations(now, limit));
  const outcomes = await Promise.all(candidates.map((lease) => revokeOne(ctx, input.instanceId, lease)));
  return {
    expired,
    abandonedIntents,
    abandonedTasks,
    confirmed: candidates.filter((_, i) => outcomes[i] === 'confirmed').map((l) => l.id),
    failed: candidates.filter((_, i) => outcomes[i] === 'failed').map((l) => l.id),
  };
}

/** Ends one live lease from the reaper: `revoke_pending` when something may exist downstream. */
async function endOne(
  ctx: DomainContext,
  lease: LeaseRecord,
  reason: 'expired' | 'issue_abandoned',
  type: string,
): Promise<boolean> {
  const now = ctx.clock.now();
  // An intent nobody claimed was never minted: nothing exists downstream.
  const minted = !(lease.status === 'issuing' && lease.deliveredAt === null);
  const to = minted && ctx.issuers.downstream.includes(lease.issuer) ? 'revoke_pending' : 'revoked';
  return ctx.store.transaction(async (tx) => {
    if (!(await tx.endLease(lease.id, lease.status, to, now, reason))) return false;
    await tx.appendAudit(
      {
        type,
        actor: SYSTEM,
        requestId: lease.requestId,
        data: { lease_id: lease.id, kind: lease.kind, issuer: lease.issuer, status: to },
      },
      now,
    );
    return true;
  });
}

async function revokeOne(
  ctx: DomainContext,
  instanceId: string,
  lease: LeaseRecord,
): Promise<'confirmed' | 'failed' | 'skipped'> {
  const claimedAt = ctx.clock.now();
  const claimed = await ctx.store.transaction((tx) =>
    tx.claimRevocation(lease.id, instanceId, claimedAt, claimedAt + REVOCATION_CLAIM_SECONDS * 1000),
  );
  if (!claimed) return 'skipped'; // another instance holds it, or it was confirmed meanwhile
  let failure: unknown = null;
  try {
    const issuer = ctx.issuers.get(lease.issuer);
    if (!issuer) throw new CountersignError('CS_ISSUER_UNKNOWN', `issuer ${lease.issuer} is not configured`);
    await issuer.revoke(lease);
  } catch (error) {
    failure = error;
  }
  const now = ctx.clock.now();
  if (failure === null) {
    await ctx.store.transaction(async (tx) => {
      if (!(await tx.confirmRevocation(lease.id, now))) return;
      await tx.appendAudit(
        {
          type: 'lease.revoked',
          actor: issuerActor(lease),
          requestId: lease.requestId,
          data: {
            lease_id: lease.id,
            reason: lease.revokeReason,
            kind: lease.kind,
            issuer: lease.issuer,
            confirmed: 'downstream',
            attempts: lease.revokeAttempts + 1,
          },
        },
        now,
      );
    });
    return 'confirmed';
  }
  const attempts = lease.revokeAttempts + 1;
  const nextAt = now + revocationBackoffSeconds(attempts) * 1000;
  const error = errorClass(failure);
  await ctx.store.transaction(async (tx) => {
    if (!(await tx.failRevocation(lease.id, instanceId, attempts, nextAt, error))) return;
    await tx.appendAudit(
      {
        type: 'lease.revoke_failed',
        actor: issuerActor(lease),
        requestId: lease.requestId,
        data: {
          lease_id: lease.id,
          issuer: lease.issuer,
          attempt: attempts,
          error,
          next_attempt_at: new Date(nextAt).toISOString(),
        },
      },
      now,
    );
  });
  return 'failed';
}
