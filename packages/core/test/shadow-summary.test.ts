import { describe, expect, it } from 'vitest';
import { shadowSummary } from '../src/backtest.js';
import type { ShadowDecisionRecord } from '../src/records.js';

const row = (
  requestId: string,
  active: 'allow' | 'review' | 'deny',
  candidate: 'allow' | 'review' | 'deny',
) =>
  ({
    requestId,
    agentId: 'agt_1',
    action: 'db.read',
    resource: 'postgres://prod/orders',
    activeVersion: 'a',
    activeOutcome: active,
    activeGroup: null,
    candidateVersion: 'c',
    candidateOutcome: candidate,
    candidateGroup: null,
    candidatePolicies: [],
    createdAt: 0,
  }) satisfies ShadowDecisionRecord;

describe('shadowSummary', () => {
  it('counts every difference by outcome change and keeps only the first examples of each', () => {
    const rows = [row('r1', 'review', 'allow'), row('r2', 'review', 'allow'), row('r3', 'allow', 'deny')];
    const s = shadowSummary(rows, 1);
    expect(s.differences).toBe(3);
    expect(s.changes).toEqual({ 'review->allow': 2, 'allow->deny': 1 });
    expect(s.examples['review->allow']!.map((r) => r.requestId)).toEqual(['r1']);
    expect(s.examples['allow->deny']!.map((r) => r.requestId)).toEqual(['r3']);
  });
});
