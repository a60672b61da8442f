/**
 * submitAccessRequest: authenticate (done by the caller), normalize + digest, catalog, risk,
 * checkpoint, then in ONE unit of work: consume the assertion, record the request, the
 * decision and its audit events, and for an allow the lease. A `decision` issuer's credential
 * (a signature) is minted before the unit; a `delivery` issuer's (a database role) only after
 * the unit committed the lease intent (THREATS.md H1). Either way it is handed out only after
 * its lease is committed `active` with its audit event (invariant 1).
 */
import type { AuditEventInput } from '../audit.js';
import { denyForIssuer } from '../checkpoint.js';
import { canonicalJson, checkToolCall, requestDigestOfCanonical, sha256Hex } from '../digest.js';
import { CountersignError } from '../errors.js';
import { evaluateAccessRequest, evaluatePolicyInput } from '../evaluate.js';
import type { Grant, IssuedCredential } from '../issuer-port.js';
import type { AccessRequestRecord, AgentRecord, LeaseRecord, ShadowDecisionRecord } from '../records.js';
import type { AccessRequestInput, Decision, RequestStatus } from '../types.js';
import { runUnit } from '../units.js';
import { agentActor, requestSummary } from './audit-helpers.js';
import type { Assertion, DomainContext } from './context.js';
import { grantFor } from './grant.js';
import { leaseRecordFor } from './lease-record.js';
import { mintLease } from './mint-lease.js';
import { reviewNotifications } from './notify.js';

export interface SubmitAccessRequestInput {
  readonly agent: AgentRecord;
  readonly assertion: Assertion;
  readonly request: AccessRequestInput;
  /** Canonical JSON of the body as received, hashed to recognise retries. */
  readonly bodyCanonical: string;
  readonly idempotencyKey: string | null;
}

export interface AccessRequestResult {
  readonly record: AccessRequestRecord;
  /** Present only in the answer that created the lease; never stored, never replayed. */
  readonly credential: Readonly<Record<string, unknown>> | null;
  /** True when an earlier request with the same idempotency key was returned. */
  readonly replayed: boolean;
}

const OUTCOME_STATUS = { allow: 'allowed', deny: 'denied', review: 'pending' } as const satisfies Record<
  Decision['outcome'],
  RequestStatus
>;

/**
 * Answers a retry with the earlier request. The retry's assertion is still consumed first:
 * a used or stolen assertion never reads anything back, on any instance, after any restart.
 */
async function existingFor(
  ctx: DomainContext,
  assertion: Assertion,
  record: AccessRequestRecord,
  bodyHash: string,
): Promise<AccessRequestResult> {
  await runUnit(ctx.store, 'consumeAssertion', assertion);
  if (record.bodyHash !== bodyHash) {
    throw new CountersignError(
      'CS_IDEMPOTENCY_MISMATCH',
      'this Idempotency-Key was used for a different request',
    );
  }
  return { record, credential: null, replayed: true };
}

export async function submitAccessRequest({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: SubmitAccessRequestInput;
}): Promise<AccessRequestResult> {
  const { agent, request } = input;
  const now = ctx.clock.now();
  const bodyHash = sha256Hex(input.bodyCanonical);

  if (input.idempotencyKey !== null) {
    const earlier = await ctx.store.read((tx) =>
      tx.findRequestByIdempotencyKey(agent.id, input.idempotencyKey!),
    );
    if (earlier) return existingFor(ctx, input.assertion, earlier, bodyHash);
  }
  // A completed task is refused inside the unit of work below, where it is authoritative.

  if (request.context.tool_call) checkToolCall(request.context.tool_call);

  const engine = ctx.policy();
  const evaluation = evaluateAccessRequest(agent, request, engine, {
    catalog: ctx.catalog(),
    risk: ctx.risk,
    checkpoint: ctx.checkpoint,
    actionClasses: ctx.actionClasses,
    defaultTtlSeconds: ctx.defaultTtlSeconds,
  });
  const { action, actionClass, resource, facts, risk } = evaluation;
  const requestedTtl = evaluation.ttlSeconds;
  let decision = evaluation.decision;
  // Which issuer makes the credential is catalog config; one that is unknown or cannot serve
  // this action on this resource denies, before any reviewer is asked (invariant 4).
  const issuer = ctx.issuers.get(facts.issuer);
  if (decision.outcome !== 'deny') {
    const refusal = issuer ? await issuer.supports({ action, resource: resource.uri }) : null;
    if (!issuer) {
      decision = denyForIssuer(
        decision,
        'CS_ISSUER_UNKNOWN',
        `no credential issuer named ${JSON.stringify(facts.issuer)} is configured: the request is denied (fail closed)`,
      );
    } else if (refusal !== null) {
      decision = denyForIssuer(decision, 'CS_ISSUER_UNSUPPORTED', `no credential can be issued: ${refusal}`);
    }
  }

  const decisionFields = {
    agent: {
      id: agent.id,
      owner: agent.owner,
      boundary: agent.boundary,
      environment: agent.environment,
      trust_tier: agent.trustTier,
    },
    action,
    action_class: actionClass,
    resource: resource.uri,
    resource_facts: facts,
    intent: request.intent,
    context: request.context,
    ttl_seconds: request.ttl_seconds ?? null,
    effective_ttl_seconds: requestedTtl,
    policy_version: engine.version,
    config_version: ctx.configVersion,
  };
  const canonical = canonicalJson(decisionFields);
  const digest = requestDigestOfCanonical(canonical);
  const id = ctx.ids.next('req');

  let issued: IssuedCredential | null = null;
  let lease: LeaseRecord | null = null;
  let grant: Grant | null = null;
  if (decision.outcome === 'allow' && issuer) {
    grant = grantFor(
      ctx,
      {
        id,
        agentId: agent.id,
        taskId: request.intent.task_id,
        action,
        resource: resource.uri,
        digest,
        decision,
        cnfJkt: input.assertion.dpopJkt,
      },
      facts,
      now,
      requestedTtl,
    );
    if (issuer.mint === 'decision') issued = await issuer.issue(grant);
    // Handed over in this very answer, after the commit. A `delivery` issuer's intent is
    // claimed for this answer at once (deliveredAt), so no read can claim it too.
    lease = leaseRecordFor(issuer, grant, issued, now);
  }

  const record: AccessRequestRecord = {
    id,
    agentId: agent.id,
    action,
    resource: resource.uri,
    taskId: request.intent.task_id,
    status: OUTCOME_STATUS[decision.outcome],
    digest,
    canonical,
    decision,
    risk,
    idempotencyKey: input.idempotencyKey,
    bodyHash,
    createdAt: now,
    decidedAt: decision.outcome === 'review' ? null : now,
    deadlineAt: decision.outcome === 'review' ? now + decision.obligations.deadlineSeconds * 1000 : null,
    leaseId: lease?.id ?? null,
    cnfJkt: input.assertion.dpopJkt,
  };

  // Shadow mode: the candidate decides the same Cedar input; only a difference is kept.
  const candidate = ctx.candidatePolicy?.() ?? null;
  let shadow: ShadowDecisionRecord | null = null;
  if (candidate) {
    const active = evaluation.decision;
    const other = evaluatePolicyInput(evaluation.policyInput, candidate, ctx.checkpoint);
    if (
      other.outcome !== active.outcome ||
      other.obligations.reviewerGroup !== active.obligations.reviewerGroup
    ) {
      shadow = {
        requestId: id,
        agentId: agent.id,
        action,
        resource: resource.uri,
        activeVersion: active.policyVersion,
        activeOutcome: active.outcome,
        activeGroup: active.obligations.reviewerGroup,
        candidateVersion: other.policyVersion,
        candidateOutcome: other.outcome,
        candidateGroup: other.obligations.reviewerGroup,
        candidatePolicies: other.determiningPolicies.map((p) => p.id),
        createdAt: now,
      };
    }
  }

  const checkpoint = { type: 'system', id: 'checkpoint' } as const;
  const events: AuditEventInput[] = [
    {
      type: 'access_request.received',
      actor: agentActor(agent),
      requestId: id,
      data: requestSummary(record),
    },
    {
      type: 'access_request.decided',
      actor: checkpoint,
      requestId: id,
      data: {
        outcome: decision.outcome,
        determining_policies: decision.determiningPolicies.map((p) => p.id),
        policy_version: decision.policyVersion,
        risk_score: risk.score,
        error_code: decision.errorCode,
      },
    },
  ];
  if (decision.outcome === 'review') {
    events.push({
      type: 'review.opened',
      actor: checkpoint,
      requestId: id,
      data: {
        reviewer_group: decision.obligations.reviewerGroup,
        approvals: decision.obligations.approvals,
        deadline_at: new Date(record.deadlineAt!).toISOString(),
      },
    });
  }
  const outbox =
    decision.outcome === 'review' ? reviewNotifications(ctx, 'review.requested', record, 'pending', now) : [];

  try {
    // One unit of work: the assertion, the request, its audit events, notifications and lease.
    const committed = await runUnit(ctx.store, 'commitAccessRequest', {
      assertion: input.assertion,
      record,
      events,
      outbox,
      lease,
      now,
      maxPending: ctx.maxPendingReviewsPerAgent ?? null,
      shadow,
    });
    if (!committed.recorded) {
      throw new CountersignError(
        'CS_TOO_MANY_PENDING',
        `agent ${agent.id} already has ${committed.pending} pending reviews (the most allowed): wait for a decision before asking for more`,
        { details: { pending: committed.pending, max_pending: ctx.maxPendingReviewsPerAgent ?? null } },
      );
    }
  } catch (error) {
    // A concurrent retry with the same key won the insert: answer as that request did.
    if (
      input.idempotencyKey !== null &&
      error instanceof CountersignError &&
      error.code === 'CS_IDEMPOTENCY_IN_FLIGHT'
    ) {
      const earlier = await ctx.store.read((tx) =>
        tx.findRequestByIdempotencyKey(agent.id, input.idempotencyKey!),
      );
      if (earlier) return existingFor(ctx, input.assertion, earlier, bodyHash);
    }
    throw error;
  }
  // Only a review can be waited on or shown in a queue; an immediate answer is news to no one.
  if (record.status === 'pending') ctx.events.requestChanged(id);
  if (lease?.status === 'issuing' && grant) {
    return { record, credential: await mintLease({ ctx, input: { lease, grant } }), replayed: false };
  }
  return { record, credential: issued?.credential ?? null, replayed: false };
}
