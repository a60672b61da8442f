import { CountersignError } from '../errors.js';
import type { LeaseRecord } from '../records.js';
import { consumeAssertion } from './consume-assertion.js';
import type { Assertion, DomainContext } from './context.js';

/**
 * The agent says its task is still running. Recorded (not audited: it decides nothing); when
 * the operator sets a task idle timeout, a task that heartbeats and then falls silent that long
 * is abandoned by the reaper and its leases end. Answers the task's leases, so the agent
 * learns when one was revoked. A task that has ended refuses heartbeats (CS_TASK_COMPLETED).
 */
export async function heartbeatTask({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { agentId: string; taskId: string; assertion: Assertion };
}): Promise<{ leases: LeaseRecord[]; idleTimeoutSeconds: number | null }> {
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    await consumeAssertion(tx, input.assertion);
    const task = await tx.getTask(input.agentId, input.taskId);
    if (task?.outcome) {
      throw new CountersignError('CS_TASK_COMPLETED', `task ${input.taskId} has ended (${task.outcome})`);
    }
    await tx.recordHeartbeat(input.agentId, input.taskId, now);
  });
  const leases = await ctx.store.read((tx) =>
    tx.listLeases({ agentId: input.agentId, taskId: input.taskId }, 1000),
  );
  return { leases, idleTimeoutSeconds: ctx.taskIdleTimeoutSeconds };
}
