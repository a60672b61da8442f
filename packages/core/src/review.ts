/**
 * Human review, the pure part: the challenge a reviewer's passkey signs, who may vote, and
 * how votes add up. THREATS.md INV-4 (binding) and INV-6 (separation of duties).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from './digest.js';
import { CountersignError } from './errors.js';
import type { AccessRequestRecord, AgentRecord, ReviewerRecord, Verdict, VoteRecord } from './records.js';
import type { McpToolCallClaim } from './types.js';

/** Domain separation for decision challenges: never confusable with a request digest. */
export const DECISION_CHALLENGE_TAG = 'countersign/approve/v1\0';

export interface DecisionChallengeInput {
  readonly requestId: string;
  readonly requestDigest: string;
  readonly policyVersion: string;
  readonly verdict: Verdict;
  readonly reviewerId: string;
  /** base64url of 16 random bytes chosen by the server. */
  readonly nonce: string;
  readonly expiresAt: number;
}

/**
 * The WebAuthn challenge for one verdict on one request by one reviewer: 32 bytes,
 * SHA-256(tag || JCS(fields)). The server recomputes it from stored state at verification and
 * never takes it from the client, so an assertion signs exactly this decision.
 */
export function decisionChallenge(input: DecisionChallengeInput): Uint8Array {
  return sha256(
    utf8ToBytes(
      DECISION_CHALLENGE_TAG +
        canonicalJson({
          request_id: input.requestId,
          request_digest: input.requestDigest,
          policy_version: input.policyVersion,
          verdict: input.verdict,
          reviewer_id: input.reviewerId,
          nonce: input.nonce,
          expires_at: input.expiresAt,
        }),
    ),
  );
}

/** The claims of a request, as the agent sent them (for the evidence pack and SoD). */
export function requestClaims(record: AccessRequestRecord): {
  intent: { purpose: string; task_id: string; ticket?: string };
  context: {
    environment?: string;
    on_behalf_of?: string;
    tool_chain?: unknown[];
    model_output?: string;
    tool_call?: McpToolCallClaim;
  };
  ttl_seconds: number | null;
  resource_facts: Record<string, unknown>;
  action_class: string;
} {
  return JSON.parse(record.canonical);
}

/** The MCP tool call a request stands for, or null (read from its canonical claims). */
export function toolCallOf(record: AccessRequestRecord): McpToolCallClaim | null {
  if (!record.canonical.includes('"tool_call":')) return null;
  return requestClaims(record).context.tool_call ?? null;
}

/**
 * An approved MCP tool call is delivered only to a read naming the same call digest: an
 * approval never lets through a call with other arguments, another tool or another server
 * (THREATS.md A3). Checked before the one-shot credential is handed over, so a mismatched
 * attempt does not use up the approval.
 */
export function assertToolCallDigest(record: AccessRequestRecord, callDigest: string): void {
  const call = toolCallOf(record);
  if (!call || call.call_digest !== callDigest) {
    throw new CountersignError(
      'CS_ARGUMENTS_MISMATCH',
      call
        ? 'this request was reviewed for another tool call (other server, tool or arguments)'
        : 'this request is not an MCP tool call',
    );
  }
}

/**
 * Why this reviewer may not vote on this request, or null when they may. Checked when the
 * vote is cast and again for every counted vote when the review is finalised (THREATS.md A8).
 */
export function ineligibility(
  reviewer: ReviewerRecord,
  request: AccessRequestRecord,
  agent: Pick<AgentRecord, 'id' | 'owner'> | null,
): string | null {
  if (reviewer.status !== 'active') return 'the reviewer is not active';
  const { obligations } = request.decision;
  if (obligations.reviewerGroup === null || !reviewer.groups.includes(obligations.reviewerGroup)) {
    return `only members of ${obligations.reviewerGroup ?? 'the reviewer group'} may decide this request`;
  }
  const onBehalfOf = requestClaims(request).context.on_behalf_of;
  if (onBehalfOf !== undefined && (onBehalfOf === reviewer.email || onBehalfOf === reviewer.id)) {
    return 'the request is made on your behalf: someone else must decide it';
  }
  if (obligations.separation.includes('owner') && agent) {
    if (agent.owner === reviewer.email || reviewer.groups.includes(agent.owner)) {
      return `policy separates duties: the agent's owner (${agent.owner}) may not approve it`;
    }
  }
  return null;
}

export type Tally =
  | { readonly state: 'pending'; readonly approvals: number }
  | { readonly state: 'approved'; readonly approvals: number; readonly approvers: readonly VoteRecord[] }
  | { readonly state: 'denied'; readonly approvals: number; readonly deniedBy: VoteRecord };

/** One deny ends the review as denied; approvals count distinct eligible people. */
export function tally(
  votes: readonly VoteRecord[],
  eligible: (reviewerId: string) => boolean,
  needed: number,
): Tally {
  const counted = votes.filter((v) => eligible(v.reviewerId));
  const deny = counted.find((v) => v.verdict === 'deny');
  const approvers = [
    ...new Map(counted.filter((v) => v.verdict === 'approve').map((v) => [v.reviewerId, v])).values(),
  ];
  if (deny) return { state: 'denied', approvals: approvers.length, deniedBy: deny };
  if (approvers.length >= Math.max(1, needed))
    return { state: 'approved', approvals: approvers.length, approvers };
  return { state: 'pending', approvals: approvers.length };
}
