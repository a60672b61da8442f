/**
 * Policy tests: requests with the decision an operator expects, run through the same
 * evaluation the server performs (`evaluateAccessRequest`). Pure: the CLI reads the files.
 */
import { CountersignError } from './errors.js';
import { type EvaluationAgent, type EvaluationSettings, evaluateAccessRequest } from './evaluate.js';
import type { PolicyEngine } from './ports.js';
import type { AccessRequestInput, Decision, Outcome } from './types.js';

export interface PolicyTestExpectation {
  readonly outcome: Outcome;
  /** null: no review group (allow or deny); undefined: not checked. */
  readonly reviewGroup?: string | null;
  readonly approvals?: number;
  readonly maxTtlSeconds?: number;
  readonly deadlineSeconds?: number;
  readonly separation?: readonly string[];
  /** Ids of the determining policies, in any order. */
  readonly policies?: readonly string[];
}

export interface PolicyTestCase {
  readonly name: string;
  /** Where the case came from (a file name), for the report. */
  readonly source: string;
  readonly agent: EvaluationAgent;
  readonly request: AccessRequestInput;
  readonly expect: PolicyTestExpectation;
}

export interface PolicyTestResult {
  readonly case: PolicyTestCase;
  readonly passed: boolean;
  /** What differed, one line each; empty when the case passed. */
  readonly failures: readonly string[];
  /** null when the request itself could not be evaluated (a malformed action or resource). */
  readonly decision: Decision | null;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Compares a decision with an expectation; returns what differs. */
export function compareDecision(decision: Decision, expect: PolicyTestExpectation): string[] {
  const out: string[] = [];
  const o = decision.obligations;
  const show = (v: unknown) => JSON.stringify(v);
  if (decision.outcome !== expect.outcome)
    out.push(`outcome: expected ${expect.outcome}, got ${decision.outcome}`);
  if (expect.reviewGroup !== undefined && o.reviewerGroup !== expect.reviewGroup)
    out.push(`review_group: expected ${show(expect.reviewGroup)}, got ${show(o.reviewerGroup)}`);
  if (expect.approvals !== undefined && o.approvals !== expect.approvals)
    out.push(`approvals: expected ${expect.approvals}, got ${o.approvals}`);
  if (expect.maxTtlSeconds !== undefined && o.maxTtlSeconds !== expect.maxTtlSeconds)
    out.push(`max_ttl: expected ${expect.maxTtlSeconds}s, got ${o.maxTtlSeconds}s`);
  if (expect.deadlineSeconds !== undefined && o.deadlineSeconds !== expect.deadlineSeconds)
    out.push(`deadline: expected ${expect.deadlineSeconds}s, got ${o.deadlineSeconds}s`);
  if (expect.separation !== undefined && !sameSet(o.separation, expect.separation))
    out.push(`separation: expected ${show(expect.separation)}, got ${show(o.separation)}`);
  const ids = decision.determiningPolicies.map((p) => p.id);
  if (expect.policies !== undefined && !sameSet(ids, expect.policies))
    out.push(`policies: expected ${show(expect.policies)}, got ${show(ids)}`);
  if (decision.errorCode !== null)
    out.push(`error: ${decision.errorCode} ${decision.errorDetail ?? ''}`.trim());
  return out;
}

export function runPolicyTests(
  cases: readonly PolicyTestCase[],
  engine: PolicyEngine,
  settings: EvaluationSettings,
): PolicyTestResult[] {
  return cases.map((c) => {
    try {
      const { decision } = evaluateAccessRequest(c.agent, c.request, engine, settings);
      const failures = compareDecision(decision, c.expect);
      return { case: c, passed: failures.length === 0, failures, decision };
    } catch (error) {
      if (!(error instanceof CountersignError)) throw error;
      return { case: c, passed: false, failures: [`${error.code}: ${error.message}`], decision: null };
    }
  });
}
