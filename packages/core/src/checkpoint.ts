/**
 * The checkpoint: turns a policy evaluation into allow / deny / review with obligations,
 * exactly as DESIGN.md "Policy semantics" says. Pure: no I/O, no clock.
 */
import { parseDuration } from './duration.js';
import { CountersignError } from './errors.js';
import type { EvaluatedPolicy, PolicyEvaluation } from './ports.js';
import type { Decision, DeterminingPolicy, Obligations } from './types.js';

/** The annotations Countersign reads from policies. Others are allowed and ignored. */
export const OBLIGATION_ANNOTATIONS = [
  'review',
  'approvals',
  'ttl',
  'deadline',
  'reason',
  'separation',
  'waives_review',
] as const;

const GROUP = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SEPARATION_RULES = new Set(['owner']);
const POLICY_ID = /^[A-Za-z0-9][A-Za-z0-9#._:-]{0,127}$/;
const MAX_APPROVALS = 10;

export interface CheckpointSettings {
  /** Credential TTL ceiling when no policy sets `@ttl` (seconds). */
  readonly defaultMaxTtlSeconds: number;
  /** Review deadline when no policy sets `@deadline` (seconds). */
  readonly defaultDeadlineSeconds: number;
  /** Reviewer group for requests that no permit matched ("novel requests go to people"); null denies them. */
  readonly fallbackReviewGroup: string | null;
}

interface ParsedAnnotations {
  review?: string;
  approvals?: number;
  ttl?: number;
  deadline?: number;
  reason?: string;
  separation?: string[];
  waivesReview?: string[];
}

/**
 * Validates and parses one policy's obligation annotations. The policy loader calls this at
 * load time so that a bad annotation fails the load (fail closed), not a decision.
 */
export function parseObligationAnnotations(
  policyId: string,
  annotations: Readonly<Record<string, string>>,
): ParsedAnnotations {
  const out: ParsedAnnotations = {};
  const bad = (what: string): never => {
    throw new CountersignError('CS_POLICY_ERROR', `policy ${policyId}: ${what}`);
  };
  for (const [key, value] of Object.entries(annotations)) {
    switch (key) {
      case 'review':
        if (!GROUP.test(value)) bad(`@review needs a group name, got ${JSON.stringify(value)}`);
        out.review = value;
        break;
      case 'approvals': {
        const n = /^[1-9][0-9]?$/.test(value) ? Number(value) : Number.NaN;
        if (!(n >= 1 && n <= MAX_APPROVALS))
          bad(`@approvals must be 1..${MAX_APPROVALS}, got ${JSON.stringify(value)}`);
        out.approvals = n;
        break;
      }
      case 'ttl':
      case 'deadline':
        try {
          out[key] = parseDuration(value);
        } catch {
          bad(`@${key} must be a duration like 15m, got ${JSON.stringify(value)}`);
        }
        break;
      case 'reason':
        if (value.length === 0 || value.length > 500) bad('@reason must be 1..500 characters');
        out.reason = value;
        break;
      case 'separation': {
        const rules = value.split(',').map((s) => s.trim());
        for (const rule of rules)
          if (!SEPARATION_RULES.has(rule)) bad(`@separation: unknown rule ${JSON.stringify(rule)}`);
        out.separation = rules;
        break;
      }
      case 'waives_review': {
        // A routine pattern moved into policy (an adopted suggestion): when this permit is
        // satisfied, the named reviewing permits' @review no longer applies. Forbids are
        // never waived, and a waiver on a permit that itself asks for review is refused.
        if (annotations.review !== undefined) bad('@waives_review cannot be combined with @review');
        const ids = value.split(',').map((s) => s.trim());
        for (const id of ids)
          if (!POLICY_ID.test(id)) bad(`@waives_review: bad policy id ${JSON.stringify(id)}`);
        out.waivesReview = ids;
        break;
      }
      default:
        break;
    }
  }
  return out;
}

function determining(policies: readonly EvaluatedPolicy[]): DeterminingPolicy[] {
  return policies.map((p) => ({ id: p.id, effect: p.effect, reason: p.annotations.reason ?? null }));
}

function denyDecision(
  settings: CheckpointSettings,
  policyVersion: string,
  policies: DeterminingPolicy[],
  reasons: string[],
  errorCode: string | null,
  errorDetail?: string,
): Decision {
  return {
    outcome: 'deny',
    determiningPolicies: policies,
    reasons,
    obligations: {
      maxTtlSeconds: 0,
      approvals: 0,
      reviewerGroup: null,
      deadlineSeconds: settings.defaultDeadlineSeconds,
      separation: [],
    },
    policyVersion,
    errorCode,
    ...(errorDetail === undefined ? {} : { errorDetail }),
  };
}

/**
 * Derives the decision. The strictest obligations of all determining policies win:
 * shortest TTL and deadline, most approvals, every separation rule; the review group is the
 * first in policy-id order among reviewing permits (stable across runs).
 */
export function decide(
  evaluation: PolicyEvaluation,
  policyVersion: string,
  settings: CheckpointSettings,
): Decision {
  switch (evaluation.kind) {
    case 'error':
      return denyDecision(
        settings,
        policyVersion,
        [],
        // Cedar's own message stays out of the answer: the agent learns only that it failed.
        ['policy evaluation failed: the request is denied (fail closed)'],
        'CS_POLICY_ERROR',
        evaluation.message,
      );
    case 'evaluated':
      break;
    default: {
      const unreachable: never = evaluation;
      return unreachable;
    }
  }

  const policies = [...evaluation.determining].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let parsed: Array<{ policy: EvaluatedPolicy; ann: ParsedAnnotations }>;
  try {
    parsed = policies.map((policy) => ({
      policy,
      ann: parseObligationAnnotations(policy.id, policy.annotations),
    }));
  } catch (error) {
    return denyDecision(
      settings,
      policyVersion,
      [],
      ['policy evaluation failed: the request is denied (fail closed)'],
      'CS_POLICY_ERROR',
      (error as Error).message,
    );
  }
  const reasons = parsed.flatMap(({ ann }) => (ann.reason ? [ann.reason] : []));

  if (evaluation.decision === 'deny') {
    const forbids = parsed.filter(({ policy }) => policy.effect === 'forbid');
    if (forbids.length > 0 || settings.fallbackReviewGroup === null) {
      return denyDecision(
        settings,
        policyVersion,
        determining(forbids.map((f) => f.policy)),
        forbids.length > 0 ? reasons : ['no policy permits this request (default deny)'],
        null,
      );
    }
    // No permit matched and the operator sends novel requests to people.
    return {
      outcome: 'review',
      determiningPolicies: [],
      reasons: ['no policy covers this request: a person decides (fallback review)'],
      obligations: {
        maxTtlSeconds: settings.defaultMaxTtlSeconds,
        approvals: 1,
        reviewerGroup: settings.fallbackReviewGroup,
        deadlineSeconds: settings.defaultDeadlineSeconds,
        separation: [],
      },
      policyVersion,
      errorCode: null,
    };
  }

  // Defence in depth: an allow must rest on at least one permit and on no forbid. Cedar
  // guarantees both; an engine that breaks that promise gets a deny, not our trust.
  if (parsed.length === 0 || parsed.some(({ policy }) => policy.effect === 'forbid')) {
    return denyDecision(
      settings,
      policyVersion,
      [],
      ['the policy engine returned an inconsistent allow'],
      'CS_POLICY_ERROR',
    );
  }
  const waived = new Set(parsed.flatMap(({ ann }) => ann.waivesReview ?? []));
  const reviewing = parsed.filter(({ policy, ann }) => ann.review !== undefined && !waived.has(policy.id));
  const obligations: Obligations = {
    maxTtlSeconds: Math.min(
      settings.defaultMaxTtlSeconds,
      ...parsed.map(({ ann }) => ann.ttl ?? Number.POSITIVE_INFINITY),
    ),
    approvals: reviewing.length === 0 ? 0 : Math.max(1, ...parsed.map(({ ann }) => ann.approvals ?? 1)),
    reviewerGroup: reviewing[0]?.ann.review ?? null,
    deadlineSeconds: Math.min(
      settings.defaultDeadlineSeconds,
      ...parsed.map(({ ann }) => ann.deadline ?? Number.POSITIVE_INFINITY),
    ),
    separation: [...new Set(parsed.flatMap(({ ann }) => ann.separation ?? []))].sort(),
  };
  return {
    outcome: reviewing.length > 0 ? 'review' : 'allow',
    determiningPolicies: determining(policies),
    reasons,
    obligations,
    policyVersion,
    errorCode: null,
  };
}

/**
 * A request that policy allowed or sent to review, denied because no credential can be made
 * for it: its issuer is not configured, or cannot serve this action on this resource. Fail
 * closed (invariant 4), and before any reviewer is asked for something that cannot be issued.
 */
export function denyForIssuer(
  decision: Decision,
  code: 'CS_ISSUER_UNKNOWN' | 'CS_ISSUER_UNSUPPORTED',
  reason: string,
): Decision {
  return {
    outcome: 'deny',
    determiningPolicies: [],
    reasons: [reason],
    obligations: {
      maxTtlSeconds: 0,
      approvals: 0,
      reviewerGroup: null,
      deadlineSeconds: decision.obligations.deadlineSeconds,
      separation: [],
    },
    policyVersion: decision.policyVersion,
    errorCode: code,
  };
}
