import type { AuditActor } from '../audit.js';
import type { LeaseRecord, TaskOutcome } from '../records.js';
import { consumeAssertion } from './consume-assertion.js';
import type { Assertion, DomainContext } from './context.js';
import { endLeases } from './end-leases.js';
import { enqueueReviewNotification } from './notify.js';

const LEASE_REASON: Record<TaskOutcome, string> = {
  completed: 'task_completed',
  failed: 'task_failed',
  abandoned: 'task_abandoned',
};

export interface EndTaskResult {
  readonly alreadyEnded: boolean;
  /** Leases this call ended: `revoked`, or `revoke_pending` while their downstream is reached. */
  readonly ended: LeaseRecord[];
}

/**
 * Ends a task in ONE unit of work: the task accepts no new requests, every lease of it ends,
 * its pending reviews are cancelled, and each step is audited. Ending twice is harmless.
 * Downstream revocations (`revoke_pending`) are carried out right after, by the caller
 * kicking the reaper (reapLeases), and retried by it until confirmed.
 */
export async function endTask(
  ctx: DomainContext,
  input: {
    agentId: string;
    taskId: string;
    outcome: TaskOutcome;
    reason?: string | null;
    assertion?: Assertion | null;
  },
  actor: AuditActor,
): Promise<EndTaskResult> {
  const now = ctx.clock.now();
  const leaseReason = LEASE_REASON[input.outcome];
  const result = await ctx.store.transaction(async (tx) => {
    if (input.assertion) await consumeAssertion(tx, input.assertion);
    // After every unit that issued a lease of this agent, before every later one (H6).
    await tx.lockAgent(input.agentId);
    const first = await tx.completeTask(
      input.agentId,
      input.taskId,
      now,
      input.outcome,
      input.reason ?? null,
    );
    const ended = await endLeases(
      ctx,
      tx,
      { agentId: input.agentId, taskId: input.taskId },
      leaseReason,
      actor,
      now,
    );
    // Pending reviews of a finished task can never be granted: cancel them in this unit.
    const cancelled: string[] = [];
    for (const pending of await tx.listPendingRequests({ agentId: input.agentId }, 10_000)) {
      if (pending.taskId !== input.taskId) continue;
      if (await tx.finishPendingRequest(pending.id, 'cancelled', now, null)) {
        cancelled.push(pending.id);
        await enqueueReviewNotification(ctx, tx, 'review.decided', pending, 'cancelled', now);
        await tx.appendAudit(
          { type: 'review.cancelled', actor, requestId: pending.id, data: { reason: leaseReason } },
          now,
        );
      }
    }
    if (first) {
      await tx.appendAudit(
        {
          type: `task.${input.outcome}`,
          actor,
          data: {
            task_id: input.taskId,
            agent_id: input.agentId,
            leases_revoked: ended.length,
            ...(input.reason ? { reason: input.reason } : {}),
          },
        },
        now,
      );
    }
    return { alreadyEnded: !first, ended, cancelled };
  });
  for (const id of result.cancelled) ctx.events.requestChanged(id);
  return { alreadyEnded: result.alreadyEnded, ended: result.ended };
}
