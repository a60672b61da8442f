/**
 * castVote: one reviewer's verdict on one request, resting on a passkey assertion the server
 * has verified against the challenge recomputed from stored state. In ONE unit of work: the
 * challenge is consumed (once), the request must still be pending, unchanged and in time, the
 * reviewer eligible, the vote recorded (once per person), and when the tally ends the review,
 * the request is finished, and on approval the lease and the approval receipt are issued with
 * their audit events (invariants 1, 2, 3, 8).
 */
import { CountersignError } from '../errors.js';
import { DEFAULT_ISSUER } from '../issuer-port.js';
import type { ReviewerRecord, Verdict, VoteRecord } from '../records.js';
import { ineligibility, requestClaims, tally } from '../review.js';
import type { DomainContext } from './context.js';
import { grantFor } from './grant.js';
import { leaseRecordFor, recordLease } from './lease-record.js';
import { enqueueReviewNotification } from './notify.js';
import { bumpCounter } from './reviewers.js';

export interface VerifiedAssertion {
  readonly credentialId: string;
  /** SHA-256 of the assertion as received. */
  readonly assertionHash: string;
  readonly counter: { readonly from: number; readonly to: number };
}

export interface CastVoteInput {
  readonly reviewer: ReviewerRecord;
  readonly requestId: string;
  readonly verdict: Verdict;
  readonly challengeId: string;
  /** The digest and policy version the verified assertion's challenge was computed from. */
  readonly requestDigest: string;
  readonly policyVersion: string;
  readonly assertion: VerifiedAssertion;
}

export interface VoteResult {
  readonly status: 'pending' | 'allowed' | 'denied';
  readonly approvalsGiven: number;
  readonly approvalsNeeded: number;
}

export async function castVote({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: CastVoteInput;
}): Promise<VoteResult> {
  const now = ctx.clock.now();
  const reviewerActor = { type: 'reviewer' as const, id: input.reviewer.id };
  const result = await ctx.store.transaction(async (tx): Promise<VoteResult> => {
    const challenge = await tx.getChallenge(input.challengeId);
    if (
      challenge?.purpose !== 'decision' ||
      challenge.reviewerId !== input.reviewer.id ||
      challenge.requestId !== input.requestId ||
      challenge.verdict !== input.verdict ||
      !(await tx.consumeChallenge(challenge.id, now))
    ) {
      throw new CountersignError(
        'CS_ASSERTION_INVALID',
        'the challenge is unknown, used, expired, or for another decision',
      );
    }
    // Lock order agent, then request (H6): a task completion or suspension of this agent and
    // every other vote on this request run before or after this unit, never beside it, so the
    // tally below sees every earlier vote and a lease never outlives the task it is for.
    const seen = await tx.getRequest(input.requestId);
    if (!seen) throw new CountersignError('CS_NOT_FOUND', 'no such request');
    const agent = await tx.lockAgent(seen.agentId);
    const request = await tx.lockRequest(input.requestId);
    if (!request) throw new CountersignError('CS_NOT_FOUND', 'no such request');
    if (request.status !== 'pending' || (request.deadlineAt !== null && request.deadlineAt <= now)) {
      throw new CountersignError(
        'CS_REVIEW_CLOSED',
        `the review is closed (${request.status === 'pending' ? 'expired' : request.status})`,
      );
    }
    // A3: the request the reviewer saw is the request that is stored, byte for byte.
    if (request.digest !== input.requestDigest || request.decision.policyVersion !== input.policyVersion) {
      throw new CountersignError(
        'CS_ASSERTION_INVALID',
        'the request changed after it was shown: the approval does not apply',
      );
    }
    // A4: a policy change since the review opened never turns into a silent allow; nor does
    // a configuration change (risk settings, TTL defaults, credential templates).
    if (ctx.policy().version !== request.decision.policyVersion) {
      throw new CountersignError(
        'CS_POLICY_CHANGED',
        'the policy set changed since this review opened; the agent must ask again',
      );
    }
    const reviewedConfig = (JSON.parse(request.canonical) as { config_version?: unknown }).config_version;
    if (reviewedConfig !== undefined && reviewedConfig !== ctx.configVersion) {
      throw new CountersignError(
        'CS_POLICY_CHANGED',
        'the configuration changed since this review opened; the agent must ask again',
      );
    }
    if (agent?.status !== 'active') {
      throw new CountersignError('CS_REVIEW_CLOSED', 'the review is closed (the agent is suspended)');
    }
    const reviewer = await tx.getReviewer(input.reviewer.id);
    const why = reviewer ? ineligibility(reviewer, request, agent) : 'unknown reviewer';
    if (why) throw new CountersignError('CS_NOT_ELIGIBLE', why);
    if ((await tx.listVotes(request.id)).some((v) => v.reviewerId === input.reviewer.id)) {
      throw new CountersignError('CS_ALREADY_VOTED', 'you already voted on this request');
    }
    if (await tx.isTaskCompleted(request.agentId, request.taskId)) {
      throw new CountersignError('CS_REVIEW_CLOSED', 'the task of this request is complete');
    }
    await bumpCounter(tx, input.assertion.credentialId, input.assertion.counter, now);
    const vote: VoteRecord = {
      requestId: request.id,
      reviewerId: input.reviewer.id,
      verdict: input.verdict,
      assertionHash: input.assertion.assertionHash,
      credentialId: input.assertion.credentialId,
      createdAt: now,
    };
    await tx.insertVote(vote);
    await tx.appendAudit(
      {
        type: 'review.vote',
        actor: reviewerActor,
        requestId: request.id,
        data: {
          verdict: input.verdict,
          assertion_hash: vote.assertionHash,
          credential_id: vote.credentialId,
          request_digest: request.digest,
        },
      },
      now,
    );

    // Finalisation re-checks every voter's eligibility now, not as it was (A8).
    const votes = await tx.listVotes(request.id);
    const eligible = new Set<string>();
    for (const v of votes) {
      const r = await tx.getReviewer(v.reviewerId);
      if (r && ineligibility(r, request, agent) === null) eligible.add(v.reviewerId);
    }
    const needed = request.decision.obligations.approvals;
    const outcome = tally(votes, (id) => eligible.has(id), needed);
    switch (outcome.state) {
      case 'pending':
        return { status: 'pending', approvalsGiven: outcome.approvals, approvalsNeeded: needed };
      case 'denied': {
        if (!(await tx.finishPendingRequest(request.id, 'denied', now, null))) {
          throw new CountersignError('CS_REVIEW_CLOSED', 'the review was closed meanwhile');
        }
        await tx.appendAudit(
          {
            type: 'review.decided',
            actor: reviewerActor,
            requestId: request.id,
            data: { verdict: 'denied', denied_by: outcome.deniedBy.reviewerId },
          },
          now,
        );
        await enqueueReviewNotification(ctx, tx, 'review.decided', request, 'denied', now);
        return { status: 'denied', approvalsGiven: outcome.approvals, approvalsNeeded: needed };
      }
      case 'approved': {
        const claims = requestClaims(request);
        const facts = claims.resource_facts;
        // The issuer the reviewer saw in the evidence pack (it is part of the digest).
        const target = {
          audience: String(facts.audience),
          issuer: typeof facts.issuer === 'string' ? facts.issuer : DEFAULT_ISSUER,
        };
        const issuer = ctx.issuers.get(target.issuer);
        if (!issuer) {
          throw new CountersignError('CS_ISSUER_UNKNOWN', `issuer ${target.issuer} is no longer configured`);
        }
        const grant = grantFor(ctx, request, target, now, claims.ttl_seconds);
        if (!(await tx.finishPendingRequest(request.id, 'allowed', now, grant.leaseId))) {
          throw new CountersignError('CS_REVIEW_CLOSED', 'the review was closed meanwhile');
        }
        // A `decision` issuer signs now; a `delivery` issuer's lease is an intent here, minted
        // once when the agent first reads the request (deliverCredential, THREATS.md H1).
        const issued = issuer.mint === 'decision' ? await issuer.issue(grant) : null;
        // Handed to the agent once, when it asks (deliverCredential).
        const lease = leaseRecordFor(issuer, grant, issued, null);
        const receipt = await ctx.receipts.sign({
          request_id: request.id,
          request_digest: request.digest,
          verdict: 'approved',
          approvers: outcome.approvers.map((v) => ({
            reviewer_id: v.reviewerId,
            assertion_hash: v.assertionHash,
            at: new Date(v.createdAt).toISOString(),
          })),
          policy_version: request.decision.policyVersion,
          lease_id: lease.id,
          agent_id: request.agentId,
        });
        await tx.insertReceipt(request.id, receipt, now);
        await tx.appendAudit(
          {
            type: 'review.decided',
            actor: reviewerActor,
            requestId: request.id,
            data: { verdict: 'approved', approvers: outcome.approvers.map((v) => v.reviewerId) },
          },
          now,
        );
        await recordLease(tx, lease, now);
        await tx.appendAudit(
          {
            type: 'receipt.issued',
            actor: { type: 'system', id: 'countersign' },
            requestId: request.id,
            data: { lease_id: lease.id },
          },
          now,
        );
        await enqueueReviewNotification(ctx, tx, 'review.decided', request, 'allowed', now);
        return { status: 'allowed', approvalsGiven: outcome.approvals, approvalsNeeded: needed };
      }
      default: {
        const unreachable: never = outcome;
        return unreachable;
      }
    }
  });
  ctx.events.requestChanged(input.requestId);
  return result;
}
