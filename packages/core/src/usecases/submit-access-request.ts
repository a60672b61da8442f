/**
 * submitAccessRequest: authenticate (done by the caller), normalize + digest, catalog, risk,
 * checkpoint, then in ONE unit of work: consume the assertion, record the request, the
 * decision and its audit events, and for an allow the lease. The credential is minted before
 * the unit (signing is CPU work) but handed out only after it commits (invariant 1).
 */
import { classifyAction, parseActionName } from '../action.js';
import { decide } from '../checkpoint.js';
import { canonicalJson, requestDigest, sha256Hex } from '../digest.js';
import { CountersignError } from '../errors.js';
import type { IssuedCredential } from '../issuer-port.js';
import { buildPolicyInput } from '../policy-input.js';
import type { AccessRequestRecord, AgentRecord, LeaseRecord } from '../records.js';
import { parseResource } from '../resource.js';
import { assessRisk } from '../risk.js';
import type { AccessRequestInput, Decision, RequestStatus } from '../types.js';
import { agentActor, requestSummary } from './audit-helpers.js';
import { consumeAssertion } from './consume-assertion.js';
import type { Assertion, DomainContext } from './context.js';
import { grantFor } from './grant.js';
import { leaseRecordFor, recordLease } from './lease-record.js';
import { enqueueReviewNotification } from './notify.js';

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
  await ctx.store.transaction((tx) => consumeAssertion(tx, assertion));
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
  if (await ctx.store.read((tx) => tx.isTaskCompleted(agent.id, request.intent.task_id))) {
    throw new CountersignError('CS_TASK_COMPLETED', `task ${request.intent.task_id} is already complete`);
  }

  const action = parseActionName(request.action);
  const actionClass = classifyAction(action, ctx.actionClasses);
  const resource = parseResource(request.resource);
  const facts = ctx.catalog().resolve(resource);
  const risk = assessRisk({ agent, actionClass, facts, request }, ctx.risk);
  const requestedTtl = request.ttl_seconds ?? ctx.defaultTtlSeconds;

  const engine = ctx.policy();
  const policyInput = buildPolicyInput({
    agent,
    action,
    actionClass,
    resource,
    facts,
    risk,
    request,
    riskSettings: ctx.risk,
    ttlSeconds: requestedTtl,
  });
  const decision = decide(engine.evaluate(policyInput), engine.version, ctx.checkpoint);

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
  const digest = requestDigest(decisionFields);
  const id = ctx.ids.next('req');

  let issued: IssuedCredential | null = null;
  let lease: LeaseRecord | null = null;
  if (decision.outcome === 'allow') {
    const grant = grantFor(
      ctx,
      {
        id,
        agentId: agent.id,
        taskId: request.intent.task_id,
        action,
        resource: resource.uri,
        digest,
        decision,
      },
      facts.audience,
      now,
      requestedTtl,
    );
    issued = await ctx.issuer.issue(grant);
    // Handed over in this very answer, after the commit.
    lease = leaseRecordFor(ctx.issuer.kind, grant, issued, now);
  }

  const record: AccessRequestRecord = {
    id,
    agentId: agent.id,
    action,
    resource: resource.uri,
    taskId: request.intent.task_id,
    status: OUTCOME_STATUS[decision.outcome],
    digest,
    canonical: canonicalJson(decisionFields),
    decision,
    risk,
    idempotencyKey: input.idempotencyKey,
    bodyHash,
    createdAt: now,
    decidedAt: decision.outcome === 'review' ? null : now,
    deadlineAt: decision.outcome === 'review' ? now + decision.obligations.deadlineSeconds * 1000 : null,
    leaseId: lease?.id ?? null,
  };

  try {
    await ctx.store.transaction(async (tx) => {
      await consumeAssertion(tx, input.assertion);
      // Re-checked inside the unit: a suspension or task completion that committed after
      // authentication must win (invariant 5, THREATS.md B12, C1).
      // lockAgent, not a plain read: at READ COMMITTED a read would let a completion or
      // suspension committing meanwhile miss this unit's lease (THREATS.md H6).
      if ((await tx.lockAgent(agent.id))?.status !== 'active') {
        throw new CountersignError('CS_AGENT_SUSPENDED', 'agent is suspended');
      }
      if (await tx.isTaskCompleted(agent.id, request.intent.task_id)) {
        throw new CountersignError('CS_TASK_COMPLETED', `task ${request.intent.task_id} is already complete`);
      }
      await tx.insertRequest(record);
      const actor = agentActor(agent);
      await tx.appendAudit(
        { type: 'access_request.received', actor, requestId: id, data: requestSummary(record) },
        now,
      );
      await tx.appendAudit(
        {
          type: 'access_request.decided',
          actor: { type: 'system', id: 'checkpoint' },
          requestId: id,
          data: {
            outcome: decision.outcome,
            determining_policies: decision.determiningPolicies.map((p) => p.id),
            policy_version: decision.policyVersion,
            risk_score: risk.score,
            error_code: decision.errorCode,
          },
        },
        now,
      );
      if (decision.outcome === 'review') {
        await tx.appendAudit(
          {
            type: 'review.opened',
            actor: { type: 'system', id: 'checkpoint' },
            requestId: id,
            data: {
              reviewer_group: decision.obligations.reviewerGroup,
              approvals: decision.obligations.approvals,
              deadline_at: new Date(record.deadlineAt!).toISOString(),
            },
          },
          now,
        );
        await enqueueReviewNotification(ctx, tx, 'review.requested', record, 'pending', now);
      }
      if (lease) await recordLease(tx, lease, now);
    });
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
  return { record, credential: issued?.credential ?? null, replayed: false };
}
