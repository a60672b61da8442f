import type { Grant, IssuedCredential } from '../issuer-port.js';
import type { LeaseRecord } from '../records.js';
import type { StoreTx } from '../store-port.js';

/** The lease record for a minted credential: ids and fingerprints only, never the secret. */
export function leaseRecordFor(
  kind: string,
  grant: Grant,
  issued: IssuedCredential,
  deliveredAt: number | null,
): LeaseRecord {
  return {
    id: grant.leaseId,
    requestId: grant.requestId,
    agentId: grant.agentId,
    taskId: grant.taskId,
    kind,
    credentialId: issued.credentialId,
    fingerprint: issued.fingerprint,
    audience: grant.audience,
    scope: issued.scope,
    issuedAt: grant.issuedAt,
    expiresAt: grant.expiresAt,
    status: 'active',
    revokedAt: null,
    revokeReason: null,
    deliveredAt,
    cnfJkt: grant.cnf?.jkt ?? null,
  };
}

/** Inserts the lease and its `lease.issued` audit event, in the caller's unit of work. */
export async function recordLease(
  tx: Pick<StoreTx, 'insertLease' | 'appendAudit'>,
  lease: LeaseRecord,
  now: number,
): Promise<void> {
  await tx.insertLease(lease);
  await tx.appendAudit(
    {
      type: 'lease.issued',
      actor: { type: 'system', id: `issuer:${lease.kind}` },
      requestId: lease.requestId,
      data: {
        lease_id: lease.id,
        kind: lease.kind,
        credential_id: lease.credentialId,
        fingerprint: lease.fingerprint,
        audience: lease.audience,
        expires_at: new Date(lease.expiresAt).toISOString(),
        ...(lease.cnfJkt ? { cnf_jkt: lease.cnfJkt } : {}),
      },
    },
    now,
  );
}
