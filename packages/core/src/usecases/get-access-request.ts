import { CountersignError } from '../errors.js';
import type { AccessRequestRecord } from '../records.js';
import type { DomainContext } from './context.js';
import { expireReview } from './expire-reviews.js';

/**
 * Reads one request as its agent. A pending review past its deadline is expired here, at
 * read time, so no sweeper delay can let a late answer through (THREATS.md A11).
 */
export async function getAccessRequest({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { agentId: string; requestId: string };
}): Promise<AccessRequestRecord> {
  let record = await ctx.store.read((tx) => tx.getRequest(input.requestId));
  // Another agent's request is "not found", so ids cannot be probed.
  if (!record || record.agentId !== input.agentId) {
    throw new CountersignError('CS_NOT_FOUND', 'no such access request');
  }
  if (record.status === 'pending' && record.deadlineAt !== null && record.deadlineAt <= ctx.clock.now()) {
    await expireReview(ctx, record);
    record = (await ctx.store.read((tx) => tx.getRequest(input.requestId)))!;
  }
  return record;
}
