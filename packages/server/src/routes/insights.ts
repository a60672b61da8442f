/**
 * Console API for keeping people for exceptions (issue 8): reviewer-load analytics, backtests,
 * shadow-mode differences and suggested policies. Thin: parse, call core, map to the wire.
 */
import {
  type BacktestChange,
  type BacktestReport,
  backtestCandidate,
  CountersignError,
  type DurationStats,
  parseDuration,
  type ReviewerLoadReport,
  reviewerLoadReport,
  type ShadowDecisionRecord,
  shadowDifferences,
} from '@countersign/core';
import { Hono } from 'hono';
import type { ServerDeps } from '../app.js';
import { requireReviewer } from '../console/session.js';

const iso = (ms: number) => new Date(ms).toISOString();
/** The longest window a console query may ask for. */
const MAX_WINDOW_SECONDS = 90 * 86_400;

/** `?window=7d` (default 7 days), bounded. */
export function windowParam(raw: string | undefined, fallbackSeconds = 7 * 86_400): number {
  if (raw === undefined || raw === '') return fallbackSeconds;
  let seconds: number;
  try {
    seconds = parseDuration(raw);
  } catch {
    throw new CountersignError('CS_INVALID_REQUEST', 'window must be a duration like 24h or 7d');
  }
  if (seconds < 60 || seconds > MAX_WINDOW_SECONDS)
    throw new CountersignError('CS_INVALID_REQUEST', 'window must be between 1m and 90d');
  return seconds;
}

const stats = (s: DurationStats) => ({
  count: s.count,
  median_seconds: s.medianSeconds,
  p90_seconds: s.p90Seconds,
});

export function reviewerLoadView(r: ReviewerLoadReport) {
  return {
    since: iso(r.since),
    until: iso(r.until),
    requests: r.requests,
    reviews: r.reviews,
    human_share: r.humanShare,
    groups: r.groups.map((g) => ({
      group: g.group,
      queue_depth: g.queueDepth,
      reviews: g.reviews,
      approved: g.approved,
      denied: g.denied,
      expired: g.expired,
      approval_rate: g.approvalRate,
      time_to_decision: stats(g.timeToDecision),
      decisions_per_hour: g.decisionsPerHour,
      quick_votes: g.quickVotes,
      unopened_votes: g.unopenedVotes,
      out_of_hours_votes: g.outOfHoursVotes,
    })),
    reviewers: r.reviewers.map((v) => ({
      reviewer_id: v.reviewerId,
      email: v.email,
      groups: v.groups,
      queue_depth: v.queueDepth,
      votes: v.votes,
      approvals: v.approvals,
      approval_rate: v.approvalRate,
      time_to_decision: stats(v.timeToDecision),
      decisions_per_hour: v.decisionsPerHour,
      quick_votes: v.quickVotes,
      unopened_votes: v.unopenedVotes,
      out_of_hours_votes: v.outOfHoursVotes,
    })),
    agents: r.agents.map((a) => ({
      agent_id: a.agentId,
      requests: a.requests,
      reviews: a.reviews,
      escalation_rate: a.escalationRate,
      pending: a.pending,
    })),
    votes_by_hour: r.votesByHour,
  };
}

export function backtestView(r: BacktestReport) {
  const change = (c: BacktestChange) => ({
    request_id: c.requestId,
    agent_id: c.agentId,
    action: c.action,
    resource: c.resource,
    created_at: iso(c.createdAt),
    from: c.from,
    to: c.to,
    from_group: c.fromGroup,
    to_group: c.toGroup,
    policies: c.policies,
    recorded_status: c.recordedStatus,
  });
  return {
    candidate_version: r.candidateVersion,
    replayed: r.replayed,
    unchanged: r.unchanged,
    skipped: r.skipped,
    reviews_before: r.reviewsBefore,
    reviews_after: r.reviewsAfter,
    changes: r.changes,
    examples: Object.fromEntries(
      Object.entries(r.examples).map(([k, list]) => [k, (list ?? []).map(change)]),
    ),
  };
}

const shadowExample = (r: ShadowDecisionRecord) => ({
  request_id: r.requestId,
  agent_id: r.agentId,
  action: r.action,
  resource: r.resource,
  at: iso(r.createdAt),
  active: { version: r.activeVersion, outcome: r.activeOutcome, group: r.activeGroup },
  candidate: {
    version: r.candidateVersion,
    outcome: r.candidateOutcome,
    group: r.candidateGroup,
    policies: r.candidatePolicies,
  },
});

export function insightRoutes(deps: ServerDeps): Hono {
  const { ctx } = deps;
  const app = new Hono();

  app.get('/v1/console/analytics', async (c) => {
    await requireReviewer(deps, c);
    const seconds = windowParam(c.req.query('window'));
    const report = await reviewerLoadReport({ ctx, input: { sinceMs: seconds * 1000 } });
    return c.json(reviewerLoadView(report));
  });

  /** The configured candidate set (shadow mode's) against the recorded requests of a window. */
  app.get('/v1/console/backtest', async (c) => {
    await requireReviewer(deps, c);
    const seconds = windowParam(c.req.query('window'));
    const candidate = deps.policies.candidate();
    if (!candidate) throw new CountersignError('CS_NOT_FOUND', noCandidate(deps));
    const report = await backtestCandidate({ ctx, input: { candidate, sinceMs: seconds * 1000 } });
    return c.json(backtestView(report));
  });

  /** Shadow mode: where the candidate decided live traffic otherwise, by outcome change. */
  app.get('/v1/console/shadow', async (c) => {
    await requireReviewer(deps, c);
    const seconds = windowParam(c.req.query('window'));
    const summary = await shadowDifferences({ ctx, input: { sinceMs: seconds * 1000 } });
    const candidate = deps.policies.candidate();
    return c.json({
      enabled: candidate !== null,
      candidate_version: candidate?.version ?? null,
      candidate_error: deps.policies.candidateError(),
      differences: summary.differences,
      changes: summary.changes,
      examples: Object.fromEntries(
        Object.entries(summary.examples).map(([k, list]) => [k, (list ?? []).map(shadowExample)]),
      ),
    });
  });

  return app;
}

function noCandidate(deps: ServerDeps): string {
  const problem = deps.policies.candidateError();
  return problem
    ? `the candidate policy set does not load: ${problem}`
    : `no candidate policy set${deps.config.candidatePolicyDir ? ` at ${deps.config.candidatePolicyDir}` : ' is configured'}`;
}
