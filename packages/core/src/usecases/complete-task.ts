import type { LeaseRecord } from '../records.js';
import { agentActor } from './audit-helpers.js';
import { consumeAssertion } from './consume-assertion.js';
import type { Assertion, DomainContext } from './context.js';
import { enqueueReviewNotification } from './notify.js';

/**
 * The agent says its task is done: every lease of the task is revoked in the same unit of
 * work, and the task accepts no new requests. Completing twice is harmless.
 */
export async function completeTask({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { agentId: string; taskId: string; assertion: Assertion };
}): Promise<{ alreadyCompleted: boolean; revoked: LeaseRecord[] }> {
  const now = ctx.clock.now();
  const actor = agentActor({ id: input.agentId });
  const result = await ctx.store.transaction(async (tx) => {
    await consumeAssertion(tx, input.assertion);
    // After every unit that issued a lease of this agent, before every later one (H6).
    await tx.lockAgent(input.agentId);
    const first = await tx.completeTask(input.agentId, input.taskId, now);
    const revoked = await tx.revokeLeases(
      { agentId: input.agentId, taskId: input.taskId },
      now,
      'task_completed',
    );
    for (const lease of revoked) {
      await tx.appendAudit(
        {
          type: 'lease.revoked',
          actor,
          requestId: lease.requestId,
          data: { lease_id: lease.id, reason: 'task_completed' },
        },
        now,
      );
    }
    // Pending reviews of a finished task can never be granted: cancel them in this unit.
    const cancelled: string[] = [];
    for (const pending of await tx.listPendingRequests({ agentId: input.agentId }, 10_000)) {
      if (pending.taskId !== input.taskId) continue;
      if (await tx.finishPendingRequest(pending.id, 'cancelled', now, null)) {
        cancelled.push(pending.id);
        await enqueueReviewNotification(ctx, tx, 'review.decided', pending, 'cancelled', now);
        await tx.appendAudit(
          { type: 'review.cancelled', actor, requestId: pending.id, data: { reason: 'task_completed' } },
          now,
        );
      }
    }
    if (first) {
      await tx.appendAudit(
        { type: 'task.completed', actor, data: { task_id: input.taskId, leases_revoked: revoked.length } },
        now,
      );
    }
    return { alreadyCompleted: !first, revoked, cancelled };
  });
  for (const id of result.cancelled) ctx.events.requestChanged(id);
  return { alreadyCompleted: result.alreadyCompleted, revoked: result.revoked };
}
