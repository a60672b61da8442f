import { describe, expect, it } from 'vitest';
import { durationStats, isOutOfHours, reviewerLoad } from '../src/analytics.js';
import type { AccessRequestRecord, ReviewerRecord, VoteRecord } from '../src/records.js';
import type { Decision } from '../src/types.js';

const T0 = Date.parse('2026-11-24T10:00:00Z'); // a Tuesday, 10:00 UTC

function decision(outcome: Decision['outcome'], group: string | null): Decision {
  return {
    outcome,
    determiningPolicies: [],
    reasons: [],
    obligations: {
      maxTtlSeconds: 60,
      approvals: 1,
      reviewerGroup: group,
      deadlineSeconds: 900,
      separation: [],
    },
    policyVersion: 'v',
    errorCode: null,
  };
}

function req(id: string, o: Partial<AccessRequestRecord> & { group?: string | null }): AccessRequestRecord {
  const review = o.group !== undefined && o.group !== null;
  return {
    id,
    agentId: 'a1',
    action: 'write',
    resource: 'postgres://prod/x',
    taskId: 't',
    status: review ? 'pending' : 'allowed',
    digest: 'd',
    canonical: '{}',
    decision: decision(review ? 'review' : 'allow', o.group ?? null),
    risk: { score: 1, factors: [] },
    idempotencyKey: null,
    bodyHash: 'b',
    createdAt: T0,
    decidedAt: review ? null : T0,
    deadlineAt: review ? T0 + 900_000 : null,
    leaseId: null,
    cnfJkt: null,
    ...o,
  };
}

const vote = (
  requestId: string,
  reviewerId: string,
  at: number,
  verdict: 'approve' | 'deny' = 'approve',
): VoteRecord => ({
  requestId,
  reviewerId,
  verdict,
  assertionHash: 'h',
  credentialId: 'c',
  createdAt: at,
});

const reviewer = (id: string, groups: string[]): ReviewerRecord => ({
  id,
  email: `${id}@acme.dev`,
  groups,
  status: 'active',
  webauthnUserId: id,
  createdAt: 0,
});

describe('reviewer-load analytics', () => {
  it('durations: nearest-rank median and p90', () => {
    expect(durationStats([])).toEqual({ count: 0, medianSeconds: null, p90Seconds: null });
    expect(durationStats([10, 1, 5, 7, 3, 9, 2, 8, 4, 6])).toEqual({
      count: 10,
      medianSeconds: 5,
      p90Seconds: 9,
    });
  });

  it('out of hours: weekends, before 08:00 and from 18:00 UTC by default', () => {
    expect(isOutOfHours(T0)).toBe(false);
    expect(isOutOfHours(Date.parse('2026-11-24T18:00:00Z'))).toBe(true);
    expect(isOutOfHours(Date.parse('2026-11-24T07:59:59Z'))).toBe(true);
    expect(isOutOfHours(Date.parse('2026-11-28T12:00:00Z'))).toBe(true); // Saturday
    // A reviewer team at UTC+9: 10:00 UTC is 19:00 there.
    expect(
      isOutOfHours(T0, { startHour: 8, endHour: 18, days: [1, 2, 3, 4, 5], utcOffsetMinutes: 540 }),
    ).toBe(true);
  });

  it('per reviewer and group: queue, time to decision, approval rate, rubber-stamp signals, expiries; per agent: escalation', () => {
    const now = T0 + 3_600_000;
    const requests = [
      req('r1', { group: 'billing', status: 'allowed', decidedAt: T0 + 60_000 }),
      req('r2', { group: 'billing', status: 'denied', decidedAt: T0 + 120_000, createdAt: T0 + 10_000 }),
      req('r3', { group: 'billing', deadlineAt: T0 + 7_200_000 }), // open
      req('r4', { group: 'security', status: 'expired', agentId: 'a2' }),
      req('r5', { group: 'security', agentId: 'a2', deadlineAt: T0 + 1000 }), // pending past deadline: expired
      req('r6', {}),
      req('r7', {}),
      req('r8', { agentId: 'a2' }),
    ];
    const votes = [
      vote('r1', 'alice', T0 + 60_000),
      vote('r2', 'alice', T0 + 120_000, 'deny'),
      vote('r1', 'bob', Date.parse('2026-11-24T19:00:00Z')),
    ];
    const views = [
      { requestId: 'r1', reviewerId: 'alice', viewedAt: T0 + 58_000 }, // voted 2 s later: quick
      { requestId: 'r2', reviewerId: 'alice', viewedAt: T0 + 60_000 }, // 60 s later: considered
      // bob never opened r1
    ];
    const r = reviewerLoad({
      requests,
      votes,
      views,
      reviewers: [
        reviewer('alice', ['billing']),
        reviewer('bob', ['billing', 'security']),
        reviewer('carol', ['security']),
      ],
      options: { now, since: T0 - 3_600_000 },
    });
    expect(r.requests).toBe(8);
    expect(r.reviews).toBe(5);
    expect(r.humanShare).toBeCloseTo(5 / 8);
    const billing = r.groups.find((g) => g.group === 'billing')!;
    expect(billing).toMatchObject({
      queueDepth: 1,
      reviews: 3,
      approved: 1,
      denied: 1,
      expired: 0,
      approvalRate: 0.5,
      timeToDecision: { count: 2, medianSeconds: 60, p90Seconds: 110 },
      decisionsPerHour: 1, // 2 decisions over a 2-hour window
      quickVotes: 1,
      unopenedVotes: 1,
      outOfHoursVotes: 1,
    });
    expect(r.groups.find((g) => g.group === 'security')).toMatchObject({ queueDepth: 0, expired: 2 });
    const alice = r.reviewers.find((x) => x.reviewerId === 'alice')!;
    expect(alice).toMatchObject({
      queueDepth: 1,
      votes: 2,
      approvals: 1,
      approvalRate: 0.5,
      timeToDecision: { count: 2, medianSeconds: 60, p90Seconds: 110 },
      quickVotes: 1,
      unopenedVotes: 0,
      outOfHoursVotes: 0,
    });
    expect(r.reviewers.find((x) => x.reviewerId === 'bob')).toMatchObject({
      queueDepth: 1,
      votes: 1,
      unopenedVotes: 1,
      outOfHoursVotes: 1,
    });
    expect(r.reviewers.find((x) => x.reviewerId === 'carol')).toMatchObject({
      queueDepth: 0,
      votes: 0,
      approvalRate: null,
    });
    expect(r.agents).toEqual([
      { agentId: 'a1', requests: 5, reviews: 3, escalationRate: 3 / 5, pending: 1 },
      { agentId: 'a2', requests: 3, reviews: 2, escalationRate: 2 / 3, pending: 0 },
    ]);
    expect(r.votesByHour[10]).toBe(2);
    expect(r.votesByHour[19]).toBe(1);
  });
});
