import type { LeaseRecord } from '../records.js';
import { agentActor } from './audit-helpers.js';
import type { Assertion, DomainContext } from './context.js';
import { endTask } from './end-task.js';

/**
 * The agent says its task failed: like completion, every lease of it ends and the task takes
 * no new requests; the audit records the failure and the agent's reason (its claim).
 */
export async function failTask({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { agentId: string; taskId: string; reason: string | null; assertion: Assertion };
}): Promise<{ alreadyEnded: boolean; revoked: LeaseRecord[] }> {
  const result = await endTask(
    ctx,
    {
      agentId: input.agentId,
      taskId: input.taskId,
      outcome: 'failed',
      reason: input.reason,
      assertion: input.assertion,
    },
    agentActor({ id: input.agentId }),
  );
  return { alreadyEnded: result.alreadyEnded, revoked: result.ended };
}
