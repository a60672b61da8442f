/**
 * Reviewer-load analytics: where the human load comes from and whether review is still
 * review (OWASP Agentic T10, "overwhelming human in the loop"). Pure: the caller reads the
 * requests, votes and evidence views of a window from the store and passes the clock's now.
 */
import type { AccessRequestRecord, EvidenceViewRecord, ReviewerRecord, VoteRecord } from './records.js';

export interface WorkingHours {
  /** Hour of day the working day starts and ends, in the offset below (end exclusive). */
  readonly startHour: number;
  readonly endHour: number;
  /** Days of the week that are working days (0 = Sunday). */
  readonly days: readonly number[];
  /** Minutes east of UTC the hours above are in. */
  readonly utcOffsetMinutes: number;
}

export const DEFAULT_WORKING_HOURS: WorkingHours = {
  startHour: 8,
  endHour: 18,
  days: [1, 2, 3, 4, 5],
  utcOffsetMinutes: 0,
};

/** A vote this soon after its reviewer first opened the evidence pack is a rubber-stamp signal. */
export const RUBBER_STAMP_SECONDS = 5;

export interface AnalyticsOptions {
  readonly now: number;
  readonly since: number;
  readonly workingHours?: WorkingHours;
  readonly rubberStampSeconds?: number;
}

export interface DurationStats {
  readonly count: number;
  readonly medianSeconds: number | null;
  readonly p90Seconds: number | null;
}

/** Rubber-stamp signals over a set of votes. */
export interface VoteSignals {
  /** Votes cast within `rubberStampSeconds` of first opening the evidence pack. */
  readonly quickVotes: number;
  /** Votes cast without ever opening the evidence pack. */
  readonly unopenedVotes: number;
  readonly outOfHoursVotes: number;
}

export interface ReviewerLoad extends VoteSignals {
  readonly reviewerId: string;
  readonly email: string | null;
  readonly groups: readonly string[];
  /** Pending reviews this reviewer could decide and has not voted on. */
  readonly queueDepth: number;
  readonly votes: number;
  readonly approvals: number;
  readonly approvalRate: number | null;
  /** From the request's creation to this reviewer's vote. */
  readonly timeToDecision: DurationStats;
  readonly decisionsPerHour: number;
}

export interface GroupLoad extends VoteSignals {
  readonly group: string;
  readonly queueDepth: number;
  readonly reviews: number;
  readonly approved: number;
  readonly denied: number;
  readonly expired: number;
  readonly approvalRate: number | null;
  /** From the request's creation to the review's end (approved or denied). */
  readonly timeToDecision: DurationStats;
  readonly decisionsPerHour: number;
}

export interface AgentLoad {
  readonly agentId: string;
  readonly requests: number;
  readonly reviews: number;
  /** Share of the agent's requests that went to a person. */
  readonly escalationRate: number;
  readonly pending: number;
}

export interface ReviewerLoadReport {
  readonly since: number;
  readonly until: number;
  readonly requests: number;
  readonly reviews: number;
  /** Share of all requests that reached a person. */
  readonly humanShare: number;
  readonly groups: readonly GroupLoad[];
  readonly reviewers: readonly ReviewerLoad[];
  readonly agents: readonly AgentLoad[];
  /** Votes per hour of day (UTC + offset), 24 buckets: when people are asked to decide. */
  readonly votesByHour: readonly number[];
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function durationStats(seconds: readonly number[]): DurationStats {
  const sorted = [...seconds].sort((a, b) => a - b);
  return { count: sorted.length, medianSeconds: percentile(sorted, 50), p90Seconds: percentile(sorted, 90) };
}

function localTime(at: number, hours: WorkingHours): Date {
  return new Date(at + hours.utcOffsetMinutes * 60_000);
}

export function isOutOfHours(at: number, hours: WorkingHours = DEFAULT_WORKING_HOURS): boolean {
  const t = localTime(at, hours);
  const h = t.getUTCHours();
  return !hours.days.includes(t.getUTCDay()) || h < hours.startHour || h >= hours.endHour;
}

const isReview = (r: AccessRequestRecord) => r.deadlineAt !== null;
const isOpen = (r: AccessRequestRecord, now: number) =>
  r.status === 'pending' && r.deadlineAt !== null && r.deadlineAt > now;
const isExpired = (r: AccessRequestRecord, now: number) =>
  r.status === 'expired' || (r.status === 'pending' && r.deadlineAt !== null && r.deadlineAt <= now);
const ratio = (a: number, b: number) => (b === 0 ? null : a / b);

export function reviewerLoad(input: {
  readonly requests: readonly AccessRequestRecord[];
  readonly votes: readonly VoteRecord[];
  readonly views: readonly EvidenceViewRecord[];
  readonly reviewers: readonly ReviewerRecord[];
  readonly options: AnalyticsOptions;
}): ReviewerLoadReport {
  const { now, since } = input.options;
  const hours = input.options.workingHours ?? DEFAULT_WORKING_HOURS;
  const quick = (input.options.rubberStampSeconds ?? RUBBER_STAMP_SECONDS) * 1000;
  const windowHours = Math.max(1, (now - since) / 3_600_000);
  const byId = new Map(input.requests.map((r) => [r.id, r]));
  const viewed = new Map(input.views.map((v) => [`${v.requestId}\0${v.reviewerId}`, v.viewedAt]));
  const reviews = input.requests.filter(isReview);
  const open = reviews.filter((r) => isOpen(r, now));

  interface VoteFacts {
    readonly vote: VoteRecord;
    readonly request: AccessRequestRecord | undefined;
    readonly quick: boolean;
    readonly unopened: boolean;
    readonly outOfHours: boolean;
  }
  const voteFacts: VoteFacts[] = input.votes.map((vote) => {
    const view = viewed.get(`${vote.requestId}\0${vote.reviewerId}`);
    return {
      vote,
      request: byId.get(vote.requestId),
      quick: view !== undefined && vote.createdAt - view < quick,
      unopened: view === undefined,
      outOfHours: isOutOfHours(vote.createdAt, hours),
    };
  });
  const voteSignals = (facts: readonly VoteFacts[]): VoteSignals => ({
    quickVotes: facts.filter((f) => f.quick).length,
    unopenedVotes: facts.filter((f) => f.unopened).length,
    outOfHoursVotes: facts.filter((f) => f.outOfHours).length,
  });
  const votedBy = new Set(input.votes.map((v) => `${v.requestId}\0${v.reviewerId}`));

  const reviewerIds = new Set([...input.reviewers.map((r) => r.id), ...input.votes.map((v) => v.reviewerId)]);
  const reviewerById = new Map(input.reviewers.map((r) => [r.id, r]));
  const reviewers: ReviewerLoad[] = [...reviewerIds].sort().map((id) => {
    const record = reviewerById.get(id);
    const groups = record?.groups ?? [];
    const mine = voteFacts.filter((f) => f.vote.reviewerId === id);
    const approvals = mine.filter((f) => f.vote.verdict === 'approve').length;
    return {
      reviewerId: id,
      email: record?.email ?? null,
      groups,
      queueDepth: open.filter(
        (r) => groups.includes(r.decision.obligations.reviewerGroup ?? '') && !votedBy.has(`${r.id}\0${id}`),
      ).length,
      votes: mine.length,
      approvals,
      approvalRate: ratio(approvals, mine.length),
      timeToDecision: durationStats(
        mine.flatMap((f) => (f.request ? [(f.vote.createdAt - f.request.createdAt) / 1000] : [])),
      ),
      decisionsPerHour: mine.length / windowHours,
      ...voteSignals(mine),
    };
  });

  const groupNames = [
    ...new Set(reviews.map((r) => r.decision.obligations.reviewerGroup ?? '(none)')),
  ].sort();
  const groups: GroupLoad[] = groupNames.map((group) => {
    const mine = reviews.filter((r) => (r.decision.obligations.reviewerGroup ?? '(none)') === group);
    const approved = mine.filter((r) => r.status === 'allowed').length;
    const denied = mine.filter((r) => r.status === 'denied').length;
    const ids = new Set(mine.map((r) => r.id));
    const groupVotes = voteFacts.filter((f) => ids.has(f.vote.requestId));
    return {
      group,
      queueDepth: mine.filter((r) => isOpen(r, now)).length,
      reviews: mine.length,
      approved,
      denied,
      expired: mine.filter((r) => isExpired(r, now)).length,
      approvalRate: ratio(approved, approved + denied),
      timeToDecision: durationStats(
        mine.flatMap((r) =>
          (r.status === 'allowed' || r.status === 'denied') && r.decidedAt !== null
            ? [(r.decidedAt - r.createdAt) / 1000]
            : [],
        ),
      ),
      decisionsPerHour: (approved + denied) / windowHours,
      ...voteSignals(groupVotes),
    };
  });

  const agentIds = [...new Set(input.requests.map((r) => r.agentId))].sort();
  const agents: AgentLoad[] = agentIds
    .map((agentId) => {
      const mine = input.requests.filter((r) => r.agentId === agentId);
      const escalated = mine.filter(isReview).length;
      return {
        agentId,
        requests: mine.length,
        reviews: escalated,
        escalationRate: escalated / mine.length,
        pending: mine.filter((r) => isOpen(r, now)).length,
      };
    })
    .sort((a, b) => b.reviews - a.reviews || a.agentId.localeCompare(b.agentId));

  const votesByHour = Array.from({ length: 24 }, () => 0);
  for (const f of voteFacts) votesByHour[localTime(f.vote.createdAt, hours).getUTCHours()]! += 1;

  return {
    since,
    until: now,
    requests: input.requests.length,
    reviews: reviews.length,
    humanShare: input.requests.length === 0 ? 0 : reviews.length / input.requests.length,
    groups,
    reviewers,
    agents,
    votesByHour,
  };
}
