/**
 * Review notifications go through an outbox written in the same unit of work as the change
 * they announce (THREATS.md H2). They carry ids, the action and the risk, never credentials
 * or the agent's free text (K4), and nothing in them can approve anything (K1): a reviewer
 * follows the link and decides with a passkey.
 */
import type { AccessRequestRecord, OutboxRecord } from '../records.js';
import type { StoreTx } from '../store-port.js';
import type { DomainContext } from './context.js';

export type ReviewNotification = 'review.requested' | 'review.decided';

/** The outbox records announcing a review change, one per subscriber (not yet written). */
export function reviewNotifications(
  ctx: Pick<DomainContext, 'ids' | 'subscribers'>,
  type: ReviewNotification,
  record: AccessRequestRecord,
  status: AccessRequestRecord['status'],
  now: number,
): OutboxRecord[] {
  const data = {
    request_id: record.id,
    status,
    agent_id: record.agentId,
    action: record.action,
    resource: record.resource,
    risk_score: record.risk.score,
    reviewer_group: record.decision.obligations.reviewerGroup,
    approvals_needed: record.decision.obligations.approvals,
    deadline_at: record.deadlineAt === null ? null : new Date(record.deadlineAt).toISOString(),
  };
  return ctx.subscribers.map((subscriber) => ({
    id: ctx.ids.next('msg'),
    subscriber,
    type,
    requestId: record.id,
    payload: { type, timestamp: new Date(now).toISOString(), data },
    attempts: 0,
    nextAttemptAt: now,
    deliveredAt: null,
    failedAt: null,
    lastError: null,
    createdAt: now,
  }));
}

export async function enqueueReviewNotification(
  ctx: Pick<DomainContext, 'ids' | 'subscribers'>,
  tx: Pick<StoreTx, 'insertOutbox'>,
  type: ReviewNotification,
  record: AccessRequestRecord,
  status: AccessRequestRecord['status'],
  now: number,
): Promise<void> {
  for (const message of reviewNotifications(ctx, type, record, status, now)) await tx.insertOutbox(message);
}
