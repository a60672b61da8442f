import { type AccessRequestRecord, type LeaseRecord, toolCallOf } from '@countersign/core';
import type { AccessRequestWire, CredentialWire } from '@countersign/protocol';

/** Epoch milliseconds as ISO 8601 text on the wire. */
export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The wire view of an access request. The credential appears only in the answer that created it. */
export function accessRequestView(
  record: AccessRequestRecord,
  credential?: Readonly<Record<string, unknown>> | null,
): AccessRequestWire {
  const d = record.decision;
  return {
    id: record.id,
    status: record.status,
    agent_id: record.agentId,
    action: record.action,
    resource: record.resource,
    task_id: record.taskId,
    created_at: iso(record.createdAt)!,
    decided_at: iso(record.decidedAt),
    review:
      d.outcome === 'review' && record.deadlineAt !== null
        ? { reviewer_group: d.obligations.reviewerGroup, deadline_at: iso(record.deadlineAt)! }
        : null,
    lease_id: record.leaseId,
    decision: {
      outcome: d.outcome,
      determining_policies: d.determiningPolicies.map((p) => ({ id: p.id, effect: p.effect })),
      reasons: d.reasons,
      obligations: {
        max_ttl_seconds: d.obligations.maxTtlSeconds,
        approvals: d.obligations.approvals,
        reviewer_group: d.obligations.reviewerGroup,
        deadline_seconds: d.obligations.deadlineSeconds,
        separation: d.obligations.separation,
      },
      risk: { score: record.risk.score, factors: record.risk.factors.map((f) => ({ ...f })) },
      policy_version: d.policyVersion,
      request_digest: record.digest,
      error_code: d.errorCode,
    },
    ...toolCallView(record),
    ...(credential ? { credential: credential as unknown as CredentialWire } : {}),
  };
}

/** The MCP tool call a request stands for (only if it has one). */
function toolCallView(record: AccessRequestRecord): Pick<AccessRequestWire, 'tool_call'> {
  const call = toolCallOf(record);
  return call ? { tool_call: { server: call.server, tool: call.tool, call_digest: call.call_digest } } : {};
}

/**
 * The wire view of a lease: ids, kind, scope and state, never the credential. `state` is what
 * the lease means now: an active lease past its TTL reads `expired` even before any reaper ran.
 */
export function leaseView(lease: LeaseRecord, now: number) {
  const state =
    (lease.status === 'active' || lease.status === 'issuing') && lease.expiresAt <= now
      ? 'expired'
      : lease.status;
  return {
    lease_id: lease.id,
    request_id: lease.requestId,
    agent_id: lease.agentId,
    task_id: lease.taskId,
    kind: lease.kind,
    issuer: lease.issuer,
    action: lease.action || null,
    resource: lease.resource || null,
    credential_id: lease.credentialId,
    fingerprint: lease.fingerprint,
    status: lease.status,
    state,
    issued_at: iso(lease.issuedAt),
    expires_at: iso(lease.expiresAt),
    delivered_at: iso(lease.deliveredAt),
    revoked_at: iso(lease.revokedAt),
    revoke_reason: lease.revokeReason,
    revoke_attempts: lease.revokeAttempts,
    next_revoke_at: iso(lease.nextRevokeAt),
    last_revoke_error: lease.lastRevokeError,
    revoke_confirmed_at: iso(lease.revokeConfirmedAt),
  };
}
