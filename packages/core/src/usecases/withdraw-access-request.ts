import { CountersignError } from '../errors.js';
import type { AccessRequestRecord } from '../records.js';
import { agentActor } from './audit-helpers.js';
import { consumeAssertion } from './consume-assertion.js';
import type { Assertion, DomainContext } from './context.js';
import { enqueueReviewNotification } from './notify.js';

/** The agent takes back a pending request. Only `pending` can be withdrawn. */
export async function withdrawAccessRequest({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { agentId: string; requestId: string; assertion: Assertion };
}): Promise<AccessRequestRecord> {
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    await consumeAssertion(tx, input.assertion);
    const record = await tx.getRequest(input.requestId);
    if (!record || record.agentId !== input.agentId)
      throw new CountersignError('CS_NOT_FOUND', 'no such access request');
    if (record.status === 'pending' && record.deadlineAt !== null && record.deadlineAt <= now) {
      throw new CountersignError('CS_REQUEST_CLOSED', 'the review already expired');
    }
    if (!(await tx.finishPendingRequest(record.id, 'withdrawn', now, null))) {
      throw new CountersignError('CS_REQUEST_CLOSED', `the request is already ${record.status}`);
    }
    if (record.deadlineAt !== null)
      await enqueueReviewNotification(ctx, tx, 'review.decided', record, 'withdrawn', now);
    await tx.appendAudit(
      {
        type: 'access_request.withdrawn',
        actor: agentActor({ id: input.agentId }),
        requestId: record.id,
        data: {},
      },
      now,
    );
  });
  ctx.events.requestChanged(input.requestId);
  return (await ctx.store.read((tx) => tx.getRequest(input.requestId)))!;
}
