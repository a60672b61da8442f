/**
 * Hands an approved request's credential to its agent, once. Nothing secret is stored: the
 * issuer is deterministic for a grant (Ed25519 signatures are), so the credential is minted
 * again from the lease record and must match the fingerprint recorded when the lease was
 * issued in the approval's unit of work.
 */
import { CountersignError } from '../errors.js';
import type { AccessRequestRecord } from '../records.js';
import type { DomainContext } from './context.js';
import { grantOfLease } from './grant.js';

export async function deliverCredential({
  ctx,
  input,
}: {
  ctx: DomainContext;
  /**
   * `presenterJkt`: the DPoP key the reading call proved (RFC 9449), or null. A DPoP-bound
   * lease is handed only to a read that proves its key, so whoever holds a stolen workload
   * token cannot even use up the one delivery (B8).
   */
  input: { request: AccessRequestRecord; presenterJkt?: string | null };
}): Promise<Readonly<Record<string, unknown>> | null> {
  const { request } = input;
  if (request.status !== 'allowed' || request.leaseId === null) return null;
  const lease = await ctx.store.read((tx) => tx.getLease(request.leaseId!));
  if (!lease || lease.deliveredAt !== null || lease.status !== 'active' || lease.expiresAt <= ctx.clock.now())
    return null;
  if (lease.cnfJkt !== null && (input.presenterJkt ?? null) !== lease.cnfJkt) return null;
  const issued = await ctx.issuer.issue(grantOfLease(lease, request));
  if (issued.fingerprint !== lease.fingerprint) {
    throw new CountersignError(
      'CS_ISSUER_UNAVAILABLE',
      'the credential cannot be reproduced (was the signing key rotated?)',
    );
  }
  const now = ctx.clock.now();
  const first = await ctx.store.transaction(async (tx) => {
    if (!(await tx.markLeaseDelivered(lease.id, now))) return false;
    await tx.appendAudit(
      {
        type: 'lease.delivered',
        actor: { type: 'agent', id: request.agentId },
        requestId: request.id,
        data: { lease_id: lease.id },
      },
      now,
    );
    return true;
  });
  return first ? issued.credential : null;
}
