/**
 * Backtests: the recorded decision inputs of past requests replayed against a candidate
 * policy set. Each request's canonical decision fields (what its digest covers: the agent's
 * registry facts, the action, the catalog's facts) and its recorded risk rebuild exactly the
 * Cedar input it was decided on; the candidate decides it again. Pure.
 */
import type { CheckpointSettings } from './checkpoint.js';
import { evaluatePolicyInput } from './evaluate.js';
import { buildPolicyInput } from './policy-input.js';
import type { PolicyEngine, PolicyInput } from './ports.js';
import type { AccessRequestRecord, ShadowDecisionRecord } from './records.js';
import { parseResource } from './resource.js';
import type { RiskSettings } from './risk.js';
import type { AccessRequestInput, ActionClass, Decision, Outcome, ResourceFacts } from './types.js';

interface CanonicalDecisionFields {
  readonly agent: { id: string; owner: string; boundary: string; environment: string; trust_tier: string };
  readonly action: string;
  readonly action_class: ActionClass;
  readonly resource: string;
  readonly resource_facts: ResourceFacts;
  readonly intent: AccessRequestInput['intent'];
  readonly context: AccessRequestInput['context'];
  readonly ttl_seconds: number | null;
  readonly effective_ttl_seconds: number;
}

/** The Cedar input a recorded request was decided on; null when its record cannot be read back. */
export function recordedPolicyInput(
  record: AccessRequestRecord,
  riskSettings: RiskSettings,
): PolicyInput | null {
  let fields: CanonicalDecisionFields;
  try {
    fields = JSON.parse(record.canonical) as CanonicalDecisionFields;
    if (!fields.agent || !fields.resource_facts || typeof fields.action !== 'string') return null;
    return buildPolicyInput({
      agent: {
        id: fields.agent.id,
        owner: fields.agent.owner,
        boundary: fields.agent.boundary,
        environment: fields.agent.environment,
        trustTier: fields.agent.trust_tier,
      },
      action: fields.action,
      actionClass: fields.action_class,
      resource: parseResource(fields.resource),
      facts: fields.resource_facts,
      risk: record.risk,
      request: {
        action: fields.action,
        resource: fields.resource,
        intent: fields.intent,
        context: fields.context ?? {},
        ...(fields.ttl_seconds === null ? {} : { ttl_seconds: fields.ttl_seconds }),
      },
      riskSettings,
      ttlSeconds: fields.effective_ttl_seconds,
    });
  } catch {
    return null;
  }
}

/** `allow->review`, `review->allow`, `review->deny`, `review->review` (another group), ... */
export type OutcomeChange = `${Outcome}->${Outcome}`;

export interface BacktestChange {
  readonly requestId: string;
  readonly agentId: string;
  readonly action: string;
  readonly resource: string;
  readonly createdAt: number;
  readonly from: Outcome;
  readonly to: Outcome;
  readonly fromGroup: string | null;
  readonly toGroup: string | null;
  /** The candidate's determining policies. */
  readonly policies: readonly string[];
  /** How the request ended as recorded (allowed, denied, expired, ...). */
  readonly recordedStatus: AccessRequestRecord['status'];
}

export interface BacktestReport {
  readonly candidateVersion: string;
  readonly replayed: number;
  readonly unchanged: number;
  /** Records that could not be replayed (malformed or pre-dating the canonical form). */
  readonly skipped: number;
  /** Requests that went to a person as recorded, and under the candidate. */
  readonly reviewsBefore: number;
  readonly reviewsAfter: number;
  readonly changes: Readonly<Partial<Record<OutcomeChange, number>>>;
  readonly examples: Readonly<Partial<Record<OutcomeChange, readonly BacktestChange[]>>>;
  /** Every change, for callers that need more than the examples (suggestion proofs). */
  readonly all: readonly BacktestChange[];
}

/** The outcome policy gave the request, before any issuer refusal (which is not policy's). */
function recordedOutcome(d: Decision): Outcome | null {
  if (d.errorCode === 'CS_ISSUER_UNKNOWN' || d.errorCode === 'CS_ISSUER_UNSUPPORTED') return null;
  return d.outcome;
}

export function backtest(input: {
  readonly records: readonly AccessRequestRecord[];
  readonly candidate: PolicyEngine;
  readonly checkpoint: CheckpointSettings;
  readonly riskSettings: RiskSettings;
  readonly examplesPerChange?: number;
}): BacktestReport {
  const perChange = input.examplesPerChange ?? 5;
  const changes: Partial<Record<OutcomeChange, number>> = {};
  const examples: Partial<Record<OutcomeChange, BacktestChange[]>> = {};
  const all: BacktestChange[] = [];
  let replayed = 0;
  let unchanged = 0;
  let skipped = 0;
  let reviewsBefore = 0;
  let reviewsAfter = 0;
  for (const record of input.records) {
    const from = recordedOutcome(record.decision);
    const policyInput = from === null ? null : recordedPolicyInput(record, input.riskSettings);
    if (from === null || policyInput === null) {
      skipped++;
      continue;
    }
    replayed++;
    const decision = evaluatePolicyInput(policyInput, input.candidate, input.checkpoint);
    const to = decision.outcome;
    const fromGroup = record.decision.obligations.reviewerGroup;
    const toGroup = decision.obligations.reviewerGroup;
    if (from === 'review') reviewsBefore++;
    if (to === 'review') reviewsAfter++;
    if (from === to && (to !== 'review' || fromGroup === toGroup)) {
      unchanged++;
      continue;
    }
    const key: OutcomeChange = `${from}->${to}`;
    const change: BacktestChange = {
      requestId: record.id,
      agentId: record.agentId,
      action: record.action,
      resource: record.resource,
      createdAt: record.createdAt,
      from,
      to,
      fromGroup,
      toGroup,
      policies: decision.determiningPolicies.map((p) => p.id),
      recordedStatus: record.status,
    };
    changes[key] = (changes[key] ?? 0) + 1;
    const list = examples[key] ?? [];
    examples[key] = list;
    if (list.length < perChange) list.push(change);
    all.push(change);
  }
  return {
    candidateVersion: input.candidate.version,
    replayed,
    unchanged,
    skipped,
    reviewsBefore,
    reviewsAfter,
    changes,
    examples,
    all,
  };
}

export interface ShadowSummary {
  /** Live requests the candidate decided otherwise than the active set. */
  readonly differences: number;
  readonly changes: Readonly<Partial<Record<OutcomeChange, number>>>;
  readonly examples: Readonly<Partial<Record<OutcomeChange, readonly ShadowDecisionRecord[]>>>;
}

/** Shadow mode's differences counted by outcome change, with the first few of each. */
export function shadowSummary(rows: readonly ShadowDecisionRecord[], examplesPerChange = 5): ShadowSummary {
  const changes: Partial<Record<OutcomeChange, number>> = {};
  const examples: Partial<Record<OutcomeChange, ShadowDecisionRecord[]>> = {};
  for (const r of rows) {
    const key: OutcomeChange = `${r.activeOutcome}->${r.candidateOutcome}`;
    changes[key] = (changes[key] ?? 0) + 1;
    const list = examples[key] ?? [];
    examples[key] = list;
    if (list.length < examplesPerChange) list.push(r);
  }
  return { differences: rows.length, changes, examples };
}
