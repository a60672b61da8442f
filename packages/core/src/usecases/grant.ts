import type { Grant } from '../issuer-port.js';
import type { AccessRequestRecord, LeaseRecord } from '../records.js';
import type { DomainContext } from './context.js';

/** The grant for an allowed request: every credential parameter comes from the decision, never from the caller (A12). */
export function grantFor(
  ctx: DomainContext,
  request: Pick<
    AccessRequestRecord,
    'id' | 'agentId' | 'taskId' | 'action' | 'resource' | 'digest' | 'decision' | 'cnfJkt'
  >,
  target: { readonly audience: string; readonly issuer: string },
  issuedAt: number,
  requestedTtlSeconds: number | null,
): Grant {
  const ttl = Math.max(
    1,
    Math.min(requestedTtlSeconds ?? ctx.defaultTtlSeconds, request.decision.obligations.maxTtlSeconds),
  );
  return {
    leaseId: ctx.ids.next('lease'),
    requestId: request.id,
    agentId: request.agentId,
    taskId: request.taskId,
    action: request.action,
    resource: request.resource,
    audience: target.audience,
    requestDigest: request.digest,
    issuedAt,
    expiresAt: issuedAt + ttl * 1000,
    ...(request.cnfJkt ? { cnf: { jkt: request.cnfJkt } } : {}),
    issuer: target.issuer,
  };
}

/** The same grant again, rebuilt from a lease record (issuers are deterministic for a grant). */
export function grantOfLease(lease: LeaseRecord, request: AccessRequestRecord): Grant {
  return {
    leaseId: lease.id,
    requestId: request.id,
    agentId: lease.agentId,
    taskId: lease.taskId,
    action: request.action,
    resource: request.resource,
    audience: lease.audience,
    requestDigest: request.digest,
    issuedAt: lease.issuedAt,
    expiresAt: lease.expiresAt,
    ...(lease.cnfJkt ? { cnf: { jkt: lease.cnfJkt } } : {}),
    issuer: lease.issuer,
  };
}
