import type { LeaseRecord } from '../records.js';
import { agentActor } from './audit-helpers.js';
import type { Assertion, DomainContext } from './context.js';
import { endTask } from './end-task.js';

/**
 * The agent says its task is done: every lease of the task ends in the same unit of work, and
 * the task accepts no new requests. Completing twice is harmless. `revoked` lists every lease
 * this call ended; those still `revoke_pending` are revoked downstream by the reaper.
 */
export async function completeTask({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { agentId: string; taskId: string; assertion: Assertion };
}): Promise<{ alreadyCompleted: boolean; revoked: LeaseRecord[] }> {
  const result = await endTask(
    ctx,
    { agentId: input.agentId, taskId: input.taskId, outcome: 'completed', assertion: input.assertion },
    agentActor({ id: input.agentId }),
  );
  return { alreadyCompleted: result.alreadyEnded, revoked: result.ended };
}
