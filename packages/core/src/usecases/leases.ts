import type { AuditActor } from '../audit.js';
import type { LeaseRecord } from '../records.js';
import type { DomainContext } from './context.js';
import { endLeases } from './end-leases.js';

export type LeaseState =
  | { readonly active: true; readonly lease: LeaseRecord }
  | { readonly active: false; readonly lease: LeaseRecord | null; readonly why: string };

/**
 * Is this credential live right now? Checked at read time against TTL, revocation, task
 * completion and the agent's status, so no sweeper delay matters (invariant 5).
 */
export async function leaseState({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { credentialId: string };
}): Promise<LeaseState> {
  return ctx.store.read(async (tx) => {
    const lease = await tx.getLeaseByCredentialId(input.credentialId);
    if (!lease) return { active: false, lease: null, why: 'unknown' };
    if (lease.status !== 'active') return { active: false, lease, why: lease.revokeReason ?? lease.status };
    if (lease.expiresAt <= ctx.clock.now()) return { active: false, lease, why: 'expired' };
    const agent = await tx.getAgent(lease.agentId);
    if (agent?.status !== 'active') return { active: false, lease, why: 'agent_suspended' };
    if (await tx.isTaskCompleted(lease.agentId, lease.taskId))
      return { active: false, lease, why: 'task_completed' };
    return { active: true, lease };
  });
}

/**
 * Revokes one lease (RFC 7009, `countersign lease revoke`, the console). Idempotent: revoking
 * an ended or unknown lease is not an error and changes nothing. Returns the lease as this
 * call left it (`revoked`, or `revoke_pending` until the reaper reaches its downstream), or
 * null when it was not live.
 */
export async function revokeLease({
  ctx,
  input,
  actor,
}: {
  ctx: DomainContext;
  /** `note`: the person's own words, kept in the audit event only (the lease keeps the reason code). */
  input: { leaseId: string; reason: string; note?: string };
  actor: AuditActor;
}): Promise<LeaseRecord | null> {
  const now = ctx.clock.now();
  return ctx.store.transaction(async (tx) => {
    const ended = await endLeases(ctx, tx, { leaseId: input.leaseId }, input.reason, actor, now, input.note);
    return ended[0] ?? null;
  });
}
