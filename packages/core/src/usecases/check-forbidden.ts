/**
 * checkForbiddenActions: which of these (action, resource) pairs would policy forbid outright
 * for this agent? The MCP gateway asks it to leave such tools out of `tools/list` (a
 * convenience: every call is still checked). The answer is core's own evaluation of a neutral
 * request (no context, a fixed purpose), so it is never a second policy engine.
 *
 * "Forbidden outright" means the decision is deny because an explicit forbid policy matched.
 * A default deny (no permit), a policy error or a name the grammar refuses is not reported as
 * forbidden: a hidden tool must be one that policy names, not one it merely fails to allow.
 *
 * The call is not free of record: the assertion is consumed and one audit event
 * (`policy.visibility_checked`) is written in the same unit of work before anything is
 * answered, so an agent cannot probe policy unseen. No access request is recorded and nothing
 * is issued.
 */
import { CountersignError } from '../errors.js';
import { evaluateAccessRequest } from '../evaluate.js';
import type { AgentRecord } from '../records.js';
import type { AccessRequestInput, Decision } from '../types.js';
import { agentActor } from './audit-helpers.js';
import { consumeAssertion } from './consume-assertion.js';
import type { Assertion, DomainContext } from './context.js';

/** The most pairs one call may ask about. */
export const MAX_VISIBILITY_CHECKS = 256;
/** The purpose of the neutral request each pair is evaluated as. */
export const VISIBILITY_PURPOSE = 'tools/list visibility check';
const VISIBILITY_TASK = 'visibility-check';
/** What `parseActionName` and `parseResource` throw for a name outside the grammar. */
const NAME_ERRORS: ReadonlySet<string> = new Set(['CS_INVALID_IDENTIFIER', 'CS_INVALID_RESOURCE']);

export interface VisibilityCheck {
  readonly action: string;
  readonly resource: string;
}

export interface InvalidVisibilityCheck {
  readonly index: number;
  readonly code: string;
  readonly message: string;
}

export interface VisibilityResult {
  /** One per check, in order: true only where an explicit forbid policy denies it. */
  readonly forbidden: readonly boolean[];
  /** The checks whose action or resource the grammar refused (reported as not forbidden). */
  readonly invalid: readonly InvalidVisibilityCheck[];
  readonly policyVersion: string;
}

/** Deny because a forbid matched: not a default deny, not a fail-closed policy error. */
export function isForbiddenOutright(decision: Decision): boolean {
  return (
    decision.outcome === 'deny' &&
    decision.errorCode === null &&
    decision.determiningPolicies.some((p) => p.effect === 'forbid')
  );
}

export async function checkForbiddenActions({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { agent: AgentRecord; assertion: Assertion; checks: readonly VisibilityCheck[] };
}): Promise<VisibilityResult> {
  if (input.checks.length > MAX_VISIBILITY_CHECKS) {
    throw new CountersignError(
      'CS_TOO_MANY_CHECKS',
      `at most ${MAX_VISIBILITY_CHECKS} checks per call, got ${input.checks.length}`,
    );
  }
  const engine = ctx.policy();
  const settings = {
    catalog: ctx.catalog(),
    risk: ctx.risk,
    checkpoint: ctx.checkpoint,
    actionClasses: ctx.actionClasses,
    defaultTtlSeconds: ctx.defaultTtlSeconds,
  };
  const forbidden: boolean[] = [];
  const invalid: InvalidVisibilityCheck[] = [];
  input.checks.forEach((check, index) => {
    const request: AccessRequestInput = {
      action: check.action,
      resource: check.resource,
      intent: { purpose: VISIBILITY_PURPOSE, task_id: VISIBILITY_TASK },
      context: {},
    };
    try {
      forbidden.push(
        isForbiddenOutright(evaluateAccessRequest(input.agent, request, engine, settings).decision),
      );
    } catch (error) {
      if (!(error instanceof CountersignError) || !NAME_ERRORS.has(error.code)) throw error;
      forbidden.push(false);
      invalid.push({ index, code: error.code, message: error.message });
    }
  });
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    await consumeAssertion(tx, input.assertion);
    await tx.appendAudit(
      {
        type: 'policy.visibility_checked',
        actor: agentActor(input.agent),
        requestId: null,
        data: {
          agent_id: input.agent.id,
          checks: input.checks.length,
          forbidden: forbidden.filter(Boolean).length,
          invalid: invalid.length,
          policy_version: engine.version,
        },
      },
      now,
    );
  });
  return { forbidden, invalid, policyVersion: engine.version };
}
