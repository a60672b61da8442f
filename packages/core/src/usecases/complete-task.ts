import type { LeaseRecord } from '../records.js';
import { agentActor } from './audit-helpers.js';
import { consumeAssertion } from './consume-assertion.js';
import type { Assertion, DomainContext } from './context.js';

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
  return ctx.store.transaction(async (tx) => {
    await consumeAssertion(tx, input.assertion);
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
    if (first) {
      await tx.appendAudit(
        { type: 'task.completed', actor, data: { task_id: input.taskId, leases_revoked: revoked.length } },
        now,
      );
    }
    return { alreadyCompleted: !first, revoked };
  });
}
