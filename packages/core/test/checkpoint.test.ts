/**
 * The checkpoint `decide` (DESIGN.md "Policy semantics", THREATS.md INV-1, INV-9, J1, J2):
 * an evaluation becomes allow / deny / review with the strictest obligations; every failure
 * is a deny. Hand-built evaluations, then an exhaustive table against a reference model.
 */
import { describe, expect, it } from 'vitest';
import {
  type CheckpointSettings,
  type Decision,
  decide,
  type EvaluatedPolicy,
  isCountersignError,
  type PolicyEvaluation,
  parseObligationAnnotations,
} from '../src/index.js';

const VERSION = 'sha256:policy-v1';
const SETTINGS: CheckpointSettings = {
  defaultMaxTtlSeconds: 3600,
  defaultDeadlineSeconds: 900,
  fallbackReviewGroup: null,
};
const WITH_FALLBACK: CheckpointSettings = { ...SETTINGS, fallbackReviewGroup: 'triage' };

const permit = (id: string, annotations: Record<string, string> = {}): EvaluatedPolicy => ({
  id,
  effect: 'permit',
  annotations,
});
const forbid = (id: string, annotations: Record<string, string> = {}): EvaluatedPolicy => ({
  id,
  effect: 'forbid',
  annotations,
});
const evaluated = (decision: 'allow' | 'deny', determining: EvaluatedPolicy[]): PolicyEvaluation => ({
  kind: 'evaluated',
  decision,
  determining,
});

function expectDeny(d: Decision, errorCode: string | null = null): void {
  expect(d.outcome).toBe('deny');
  expect(d.errorCode).toBe(errorCode);
  expect(d.obligations.maxTtlSeconds).toBe(0);
  expect(d.obligations.approvals).toBe(0);
  expect(d.obligations.reviewerGroup).toBeNull();
  expect(d.policyVersion).toBe(VERSION);
}

describe('decide: outcomes', () => {
  it('J2 INV-9 an evaluation error denies with CS_POLICY_ERROR, even with a fallback group', () => {
    for (const settings of [SETTINGS, WITH_FALLBACK]) {
      const d = decide(
        { kind: 'error', message: 'policy p errored: missing attribute', policyIds: ['p'] },
        VERSION,
        settings,
      );
      expectDeny(d, 'CS_POLICY_ERROR');
      expect(d.determiningPolicies).toEqual([]);
      expect(d.errorDetail).toMatch(/missing attribute/);
    }
  });

  it('INV-1 a forbid among the determining policies denies, with its reason, even with a fallback group', () => {
    for (const settings of [SETTINGS, WITH_FALLBACK]) {
      const d = decide(
        evaluated('deny', [
          forbid('no-prod', { reason: 'Never on prod' }),
          forbid('a-second', { review: 'ops' }),
        ]),
        VERSION,
        settings,
      );
      expectDeny(d);
      expect(d.determiningPolicies.map((p) => p.id)).toEqual(['a-second', 'no-prod']);
      expect(d.determiningPolicies.every((p) => p.effect === 'forbid')).toBe(true);
      expect(d.reasons).toEqual(['Never on prod']);
    }
  });

  it('J2 INV-1 a forbid reported alongside permits in an "allow" evaluation still denies (defence in depth)', () => {
    // The port documents that Cedar never allows with a satisfied forbid, and the Cedar adapter
    // cross-checks this. But `decide` is the last line: an engine bug or another adapter that
    // reports a determining forbid must not turn into an allow or a review.
    const annotationSets: Array<Record<string, string>> = [{}, { review: 'ops' }];
    for (const annotations of annotationSets) {
      const d = decide(evaluated('allow', [permit('p', annotations), forbid('f')]), VERSION, SETTINGS);
      expect(d.outcome, JSON.stringify(annotations)).toBe('deny');
    }
  });

  it('INV-1 an "allow" evaluation with no determining permit denies (defence in depth)', () => {
    const d = decide(evaluated('allow', []), VERSION, SETTINGS);
    expect(d.outcome).toBe('deny');
  });

  it('allow with no @review permit is an allow with default obligations', () => {
    const d = decide(evaluated('allow', [permit('read-internal')]), VERSION, SETTINGS);
    expect(d).toEqual({
      outcome: 'allow',
      determiningPolicies: [{ id: 'read-internal', effect: 'permit', reason: null }],
      reasons: [],
      obligations: {
        maxTtlSeconds: 3600,
        approvals: 0,
        reviewerGroup: null,
        deadlineSeconds: 900,
        separation: [],
      },
      policyVersion: VERSION,
      errorCode: null,
    });
  });

  it('allow with one @review permit among several is a review by that group', () => {
    const d = decide(
      evaluated('allow', [
        permit('a-plain', { ttl: '30m' }),
        permit('m-review', { review: 'security' }),
        permit('z-plain'),
      ]),
      VERSION,
      SETTINGS,
    );
    expect(d.outcome).toBe('review');
    expect(d.obligations.reviewerGroup).toBe('security');
    expect(d.obligations.approvals).toBe(1);
    expect(d.obligations.maxTtlSeconds).toBe(1800);
    expect(d.determiningPolicies.map((p) => p.id)).toEqual(['a-plain', 'm-review', 'z-plain']);
  });

  it('the strictest obligations of all determining permits win', () => {
    const d = decide(
      evaluated('allow', [
        permit('p3', {
          review: 'platform-oncall',
          approvals: '2',
          ttl: '1h',
          deadline: '30m',
          reason: 'three',
        }),
        permit('p1', {
          review: 'billing-oncall',
          ttl: '15m',
          deadline: '1h',
          separation: 'owner',
          reason: 'one',
        }),
        permit('p2', { approvals: '3', ttl: '5m', deadline: '10m', separation: 'owner, owner' }),
      ]),
      VERSION,
      SETTINGS,
    );
    expect(d.outcome).toBe('review');
    expect(d.obligations).toEqual({
      maxTtlSeconds: 300, // min(15m, 5m, 1h, default 1h)
      approvals: 3, // max, including a non-reviewing permit's demand
      reviewerGroup: 'billing-oncall', // first reviewing permit in id order (p1 < p3)
      deadlineSeconds: 600, // min
      separation: ['owner'], // union, deduplicated
    });
    expect(d.reasons).toEqual(['one', 'three']);
  });

  it('the result does not depend on the order the engine reports policies in', () => {
    const policies = [
      permit('b', { review: 'beta', approvals: '2' }),
      permit('a', { review: 'alpha', ttl: '10m' }),
      permit('c', { deadline: '5m' }),
    ];
    const first = decide(evaluated('allow', policies), VERSION, SETTINGS);
    for (const order of [
      [0, 2, 1],
      [1, 0, 2],
      [2, 1, 0],
    ]) {
      expect(
        decide(
          evaluated(
            'allow',
            order.map((i) => policies[i]!),
          ),
          VERSION,
          SETTINGS,
        ),
      ).toEqual(first);
    }
    expect(first.obligations.reviewerGroup).toBe('alpha');
  });

  it('INV-5 a policy TTL or deadline longer than the default never extends it', () => {
    const d = decide(evaluated('allow', [permit('p', { ttl: '1d', deadline: '1d' })]), VERSION, SETTINGS);
    expect(d.obligations.maxTtlSeconds).toBe(3600);
    expect(d.obligations.deadlineSeconds).toBe(900);
  });

  it('INV-1 no permit and no fallback group: deny (default deny)', () => {
    const d = decide(evaluated('deny', []), VERSION, SETTINGS);
    expectDeny(d);
    expect(d.reasons.join(' ')).toMatch(/default deny/);
  });

  it('no permit with a fallback group: review by that group, one approval, default limits', () => {
    const d = decide(evaluated('deny', []), VERSION, WITH_FALLBACK);
    expect(d).toMatchObject({
      outcome: 'review',
      determiningPolicies: [],
      errorCode: null,
      obligations: {
        reviewerGroup: 'triage',
        approvals: 1,
        maxTtlSeconds: 3600,
        deadlineSeconds: 900,
        separation: [],
      },
    });
  });

  const badAnnotations: Array<Record<string, string>> = [
    { review: '' },
    { review: 'Security' },
    { review: 'a b' },
    { approvals: '0' },
    { approvals: '11' },
    { approvals: '01' },
    { approvals: '2.0' },
    { approvals: 'two' },
    { ttl: '15' },
    { ttl: '0m' },
    { ttl: '-5m' },
    { ttl: '15 m' },
    { ttl: '10000000s' },
    { deadline: '1w' },
    { reason: '' },
    { reason: 'x'.repeat(501) },
    { separation: 'manager' },
    { separation: '' },
    { separation: 'owner,' },
  ];

  it.each(badAnnotations)(
    'J1 a bad annotation %j fails the load (parseObligationAnnotations throws CS_POLICY_ERROR)',
    (ann) => {
      let error: unknown;
      try {
        parseObligationAnnotations('p', ann);
      } catch (e) {
        error = e;
      }
      expect(isCountersignError(error, 'CS_POLICY_ERROR')).toBe(true);
    },
  );

  it.each(badAnnotations)(
    'J2 INV-9 a bad annotation %j met at decision time denies with CS_POLICY_ERROR',
    (ann) => {
      for (const settings of [SETTINGS, WITH_FALLBACK]) {
        expectDeny(
          decide(evaluated('allow', [permit('ok'), permit('bad', ann)]), VERSION, settings),
          'CS_POLICY_ERROR',
        );
        expectDeny(decide(evaluated('deny', [forbid('bad', ann)]), VERSION, settings), 'CS_POLICY_ERROR');
      }
    },
  );

  it('J1 good annotations parse to seconds and counts; unknown annotations are ignored', () => {
    expect(
      parseObligationAnnotations('p', {
        review: 'billing-oncall',
        approvals: '10',
        ttl: '90s',
        deadline: '2h',
        reason: 'why',
        separation: ' owner ',
        id: 'p',
        custom: 'anything',
      }),
    ).toEqual({
      review: 'billing-oncall',
      approvals: 10,
      ttl: 90,
      deadline: 7200,
      reason: 'why',
      separation: ['owner'],
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Exhaustive small table: every Cedar-consistent evaluation over a few annotation values,
// compared with a reference model written from DESIGN.md "Policy semantics".
// ---------------------------------------------------------------------------------------------

const REVIEW = [undefined, 'alpha', 'beta'];
const APPROVALS = [undefined, '2', '3'];
const TTL: Array<[string | undefined, number]> = [
  [undefined, Number.POSITIVE_INFINITY],
  ['5m', 300],
  ['2h', 7200],
];
const DEADLINE: Array<[string | undefined, number]> = [
  [undefined, Number.POSITIVE_INFINITY],
  ['10m', 600],
];
const SEPARATION = [undefined, 'owner'];

interface Variant {
  readonly annotations: Record<string, string>;
  readonly review?: string;
  readonly approvals: number;
  readonly ttl: number;
  readonly deadline: number;
  readonly separation: boolean;
}

function variants(): Variant[] {
  const out: Variant[] = [];
  for (const review of REVIEW)
    for (const approvals of APPROVALS)
      for (const [ttl, ttlSeconds] of TTL)
        for (const [deadline, deadlineSeconds] of DEADLINE)
          for (const separation of SEPARATION) {
            const annotations: Record<string, string> = {};
            if (review) annotations.review = review;
            if (approvals) annotations.approvals = approvals;
            if (ttl) annotations.ttl = ttl;
            if (deadline) annotations.deadline = deadline;
            if (separation) annotations.separation = separation;
            out.push({
              annotations,
              ...(review ? { review } : {}),
              approvals: approvals ? Number(approvals) : 1,
              ttl: ttlSeconds,
              deadline: deadlineSeconds,
              separation: separation !== undefined,
            });
          }
  return out;
}

function model(
  decision: 'allow' | 'deny',
  policies: Array<{ id: string; effect: 'permit' | 'forbid'; v: Variant }>,
  settings: CheckpointSettings,
): Pick<Decision, 'outcome' | 'obligations'> {
  const deny = {
    outcome: 'deny' as const,
    obligations: {
      maxTtlSeconds: 0,
      approvals: 0,
      reviewerGroup: null,
      deadlineSeconds: settings.defaultDeadlineSeconds,
      separation: [],
    },
  };
  if (policies.some((p) => p.effect === 'forbid')) return deny;
  if (decision === 'deny') {
    if (settings.fallbackReviewGroup === null) return deny;
    return {
      outcome: 'review',
      obligations: {
        maxTtlSeconds: settings.defaultMaxTtlSeconds,
        approvals: 1,
        reviewerGroup: settings.fallbackReviewGroup,
        deadlineSeconds: settings.defaultDeadlineSeconds,
        separation: [],
      },
    };
  }
  const sorted = [...policies].sort((a, b) => (a.id < b.id ? -1 : 1));
  const reviewing = sorted.filter((p) => p.v.review !== undefined);
  return {
    outcome: reviewing.length > 0 ? 'review' : 'allow',
    obligations: {
      maxTtlSeconds: Math.min(settings.defaultMaxTtlSeconds, ...sorted.map((p) => p.v.ttl)),
      approvals: reviewing.length > 0 ? Math.max(...sorted.map((p) => p.v.approvals)) : 0,
      reviewerGroup: reviewing[0]?.v.review ?? null,
      deadlineSeconds: Math.min(settings.defaultDeadlineSeconds, ...sorted.map((p) => p.v.deadline)),
      separation: sorted.some((p) => p.v.separation) ? ['owner'] : [],
    },
  };
}

describe('decide: exhaustive table against the reference model', () => {
  const all = variants();

  it(`INV-1 every allow with one or two permits (${all.length} + ${all.length ** 2} evaluations) matches the model`, () => {
    let checked = 0;
    for (const settings of [SETTINGS, WITH_FALLBACK]) {
      for (const a of all) {
        const one = [{ id: 'p1', effect: 'permit' as const, v: a }];
        const d1 = decide(evaluated('allow', [permit('p1', a.annotations)]), VERSION, settings);
        expect(d1).toMatchObject(model('allow', one, settings));
        for (const b of all) {
          const two = [...one, { id: 'p0', effect: 'permit' as const, v: b }];
          const d2 = decide(
            evaluated('allow', [permit('p1', a.annotations), permit('p0', b.annotations)]),
            VERSION,
            settings,
          );
          const expected = model('allow', two, settings);
          if (
            d2.outcome !== expected.outcome ||
            JSON.stringify(d2.obligations) !== JSON.stringify(expected.obligations)
          ) {
            expect({ a: a.annotations, b: b.annotations, got: d2 }).toMatchObject({ got: expected });
          }
          checked++;
        }
      }
    }
    expect(checked).toBe(2 * all.length ** 2);
  });

  it(`INV-1 every deny (no permit, one or two forbids, with and without fallback) matches the model`, () => {
    for (const settings of [SETTINGS, WITH_FALLBACK]) {
      expect(decide(evaluated('deny', []), VERSION, settings)).toMatchObject(model('deny', [], settings));
      for (const a of all) {
        const forbids = [
          { id: 'f1', effect: 'forbid' as const, v: a },
          { id: 'f2', effect: 'forbid' as const, v: all[0]! },
        ];
        const d = decide(evaluated('deny', [forbid('f1', a.annotations), forbid('f2')]), VERSION, settings);
        expect(d).toMatchObject(model('deny', forbids, settings));
        expect(d.errorCode).toBeNull();
      }
    }
  });

  it('INV-1 an allow is only ever produced from an "allow" evaluation without errors', () => {
    const outcomes = new Set<string>();
    const evaluations: PolicyEvaluation[] = [
      { kind: 'error', message: 'x', policyIds: [] },
      evaluated('deny', []),
      ...all.map((v) => evaluated('deny', [forbid('f', v.annotations)])),
    ];
    for (const settings of [SETTINGS, WITH_FALLBACK]) {
      for (const e of evaluations) outcomes.add(decide(e, VERSION, settings).outcome);
    }
    expect(outcomes.has('allow')).toBe(false);
  });
});

describe('@waives_review (adopted suggestions)', () => {
  const reviewing = permit('review-prod', { review: 'billing-oncall', deadline: '10m' });
  const routine = permit('suggested-abc', { waives_review: 'review-prod', ttl: '5m' });

  it('a satisfied waiving permit turns the named review into an allow, with the strictest obligations', () => {
    const d = decide(evaluated('allow', [reviewing, routine]), VERSION, SETTINGS);
    expect(d.outcome).toBe('allow');
    expect(d.obligations).toMatchObject({ reviewerGroup: null, approvals: 0, maxTtlSeconds: 300 });
  });

  it('it waives only the named policies: another reviewing permit still sends the request to people', () => {
    const other = permit('review-tainted', { review: 'security' });
    const d = decide(evaluated('allow', [reviewing, other, routine]), VERSION, SETTINGS);
    expect(d.outcome).toBe('review');
    expect(d.obligations.reviewerGroup).toBe('security');
  });

  it('a waiver never outweighs a forbid, and the waiving permit alone cannot be a review', () => {
    expect(decide(evaluated('deny', [forbid('no')]), VERSION, SETTINGS).outcome).toBe('deny');
    expect(() =>
      parseObligationAnnotations('bad', { review: 'g', waives_review: 'review-prod' }),
    ).toThrowError(/cannot be combined with @review/);
    expect(() => parseObligationAnnotations('bad', { waives_review: 'a b' })).toThrowError(/bad policy id/);
  });
});
