import { describe, expect, it } from 'vitest';
import type { BacktestChange, BacktestReport } from '../src/backtest.js';
import { suggestionProof } from '../src/suggest.js';

const change = (over: Partial<BacktestChange>): BacktestChange => ({
  requestId: 'req_1',
  agentId: 'agt_1',
  action: 'db.read',
  resource: 'postgres://prod/orders',
  createdAt: 0,
  from: 'review',
  to: 'allow',
  fromGroup: 'review-prod',
  toGroup: null,
  policies: ['suggested-abc'],
  recordedStatus: 'allowed',
  ...over,
});

const report = (all: BacktestChange[]): BacktestReport => ({
  candidateVersion: 'v',
  replayed: all.length,
  unchanged: 0,
  skipped: 0,
  reviewsBefore: 0,
  reviewsAfter: 0,
  changes: {},
  examples: {},
  all,
});

describe('suggestionProof', () => {
  it('holds when every change is a spared review of an approved request', () => {
    expect(suggestionProof(report([change({}), change({ requestId: 'req_2' })]))).toEqual({
      reviewsSpared: 2,
      otherChanges: 0,
      allowsDenied: 0,
      holds: true,
    });
  });

  it('fails when it would have allowed a request a reviewer denied', () => {
    const proof = suggestionProof(report([change({ recordedStatus: 'denied' })]));
    expect(proof.allowsDenied).toBe(1);
    expect(proof.holds).toBe(false);
  });

  it('fails when it lifts a policy deny', () => {
    const proof = suggestionProof(report([change({ from: 'deny', to: 'allow', recordedStatus: 'denied' })]));
    expect(proof).toMatchObject({ allowsDenied: 1, otherChanges: 1, holds: false });
  });

  it('fails on any change besides review->allow', () => {
    const proof = suggestionProof(report([change({}), change({ to: 'review', toGroup: 'other' })]));
    expect(proof).toMatchObject({ reviewsSpared: 1, otherChanges: 1, allowsDenied: 0, holds: false });
  });
});
