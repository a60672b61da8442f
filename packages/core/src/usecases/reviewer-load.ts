/**
 * The reviewer-load report over a window, and the evidence view it rests on. Reads only;
 * recording a view is one idempotent insert.
 */
import { type AnalyticsOptions, type ReviewerLoadReport, reviewerLoad } from '../analytics.js';
import type { DomainContext } from './context.js';

/** The most rows one report reads per kind; a larger window is summarised from its newest part. */
export const ANALYTICS_MAX_ROWS = 100_000;

export async function reviewerLoadReport({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { sinceMs: number } & Omit<AnalyticsOptions, 'now' | 'since'>;
}): Promise<ReviewerLoadReport> {
  const now = ctx.clock.now();
  const since = now - input.sinceMs;
  const [requests, votes, views, reviewers] = await ctx.store.read(async (tx) => [
    await tx.listRequestsSince(since, ANALYTICS_MAX_ROWS),
    await tx.listVotesSince(since, ANALYTICS_MAX_ROWS),
    await tx.listEvidenceViews(since - 86_400_000, ANALYTICS_MAX_ROWS),
    await tx.listReviewers(),
  ]);
  return reviewerLoad({
    requests,
    votes,
    views,
    reviewers,
    options: {
      now,
      since,
      ...(input.workingHours ? { workingHours: input.workingHours } : {}),
      ...(input.rubberStampSeconds !== undefined ? { rubberStampSeconds: input.rubberStampSeconds } : {}),
    },
  });
}

/** A reviewer opened a pending review's evidence pack: remember the first time, once. */
export async function recordEvidenceView({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { requestId: string; reviewerId: string };
}): Promise<void> {
  const viewedAt = ctx.clock.now();
  await ctx.store.transaction((tx) => tx.recordEvidenceView({ ...input, viewedAt }));
}
