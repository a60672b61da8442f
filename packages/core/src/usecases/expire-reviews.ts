import type { AccessRequestRecord } from '../records.js';
import { SYSTEM } from './audit-helpers.js';
import type { DomainContext } from './context.js';
import { enqueueReviewNotification } from './notify.js';

/** Ends one pending review at its deadline. Compare-and-set: a racing approval or withdraw wins or loses cleanly. */
export async function expireReview(ctx: DomainContext, record: AccessRequestRecord): Promise<boolean> {
  const now = ctx.clock.now();
  if (record.deadlineAt === null || record.deadlineAt > now) return false;
  const changed = await ctx.store.transaction(async (tx) => {
    if (!(await tx.finishPendingRequest(record.id, 'expired', now, null))) return false;
    await tx.appendAudit(
      {
        type: 'review.expired',
        actor: SYSTEM,
        requestId: record.id,
        data: { deadline_at: new Date(record.deadlineAt!).toISOString() },
      },
      now,
    );
    await enqueueReviewNotification(ctx, tx, 'review.decided', record, 'expired', now);
    return true;
  });
  if (changed) ctx.events.requestChanged(record.id);
  return changed;
}

/** The reaper: expires every pending review past its deadline. Returns how many it ended. */
export async function expireReviews({ ctx }: { ctx: DomainContext }): Promise<number> {
  const due = await ctx.store.read((tx) =>
    tx.listPendingRequests({ deadlineBefore: ctx.clock.now() + 1 }, 500),
  );
  let count = 0;
  for (const record of due) if (await expireReview(ctx, record)) count++;
  return count;
}
