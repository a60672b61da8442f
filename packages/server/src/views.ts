import type { AccessRequestRecord } from '@countersign/core';
import type { AccessRequestWire, AccessTokenCredential } from '@countersign/protocol';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

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
    ...(credential ? { credential: credential as unknown as AccessTokenCredential } : {}),
  };
}
