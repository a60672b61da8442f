import type { AuditActor } from '../audit.js';
import type { Grant, IssuedCredential, Issuer } from '../issuer-port.js';
import type { LeaseRecord } from '../records.js';
import type { StoreTx } from '../store-port.js';

/** The fingerprint of a lease whose credential does not exist yet. */
export const NOT_MINTED = 'not-minted';

/**
 * The lease record for a grant: ids and fingerprints only, never the secret. With `issued`
 * (a `decision` issuer minted it already) the lease is `active`; without it, the lease is an
 * intent (`issuing`) that a `delivery` issuer mints after this record has committed.
 */
export function leaseRecordFor(
  issuer: Pick<Issuer, 'kind' | 'plan'>,
  grant: Grant,
  issued: IssuedCredential | null,
  deliveredAt: number | null,
): LeaseRecord {
  const plan = issued ?? issuer.plan(grant);
  return {
    id: grant.leaseId,
    requestId: grant.requestId,
    agentId: grant.agentId,
    taskId: grant.taskId,
    kind: issuer.kind,
    issuer: grant.issuer,
    action: grant.action,
    resource: grant.resource,
    credentialId: plan.credentialId,
    fingerprint: issued ? issued.fingerprint : NOT_MINTED,
    audience: grant.audience,
    scope: plan.scope,
    issuedAt: grant.issuedAt,
    expiresAt: grant.expiresAt,
    status: issued ? 'active' : 'issuing',
    revokedAt: null,
    revokeReason: null,
    deliveredAt,
    cnfJkt: grant.cnf?.jkt ?? null,
    revokeAttempts: 0,
    nextRevokeAt: null,
    claimedUntil: null,
    lastRevokeError: null,
    revokeConfirmedAt: null,
  };
}

export function issuerActor(lease: Pick<LeaseRecord, 'issuer'>): AuditActor {
  return { type: 'system', id: `issuer:${lease.issuer}` };
}

/** The `lease.issued` audit data: ids and the fingerprint, never the credential (invariant 7). */
export function issuedEventData(lease: LeaseRecord, fingerprint: string): Record<string, unknown> {
  return {
    lease_id: lease.id,
    kind: lease.kind,
    issuer: lease.issuer,
    credential_id: lease.credentialId,
    fingerprint,
    audience: lease.audience,
    expires_at: new Date(lease.expiresAt).toISOString(),
    ...(lease.cnfJkt ? { cnf_jkt: lease.cnfJkt } : {}),
  };
}

/**
 * Inserts the lease with its audit event, in the caller's unit of work: `lease.issued` for a
 * minted credential, `lease.intent` for one a `delivery` issuer will mint after the commit.
 */
export async function recordLease(
  tx: Pick<StoreTx, 'insertLease' | 'appendAudit'>,
  lease: LeaseRecord,
  now: number,
): Promise<void> {
  await tx.insertLease(lease);
  if (lease.status === 'active') {
    await tx.appendAudit(
      {
        type: 'lease.issued',
        actor: issuerActor(lease),
        requestId: lease.requestId,
        data: issuedEventData(lease, lease.fingerprint),
      },
      now,
    );
    return;
  }
  await tx.appendAudit(
    {
      type: 'lease.intent',
      actor: issuerActor(lease),
      requestId: lease.requestId,
      data: {
        lease_id: lease.id,
        kind: lease.kind,
        issuer: lease.issuer,
        credential_id: lease.credentialId,
        audience: lease.audience,
        expires_at: new Date(lease.expiresAt).toISOString(),
        ...(lease.cnfJkt ? { cnf_jkt: lease.cnfJkt } : {}),
      },
    },
    now,
  );
}
