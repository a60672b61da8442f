/**
 * Hands an approved request's credential to its agent, once (the first read after approval).
 * - A `decision` issuer is deterministic for a grant (Ed25519 signatures are), so nothing
 *   secret is stored: the credential is minted again from the lease record and must match the
 *   fingerprint recorded when the lease was issued in the approval's unit of work.
 * - A `delivery` issuer's lease is an intent committed with the approval: this read claims it
 *   (compare-and-set, one reader only) and mints it (mintLease), which commits `active` before
 *   the credential is returned.
 */
import { CountersignError } from '../errors.js';
import type { AccessRequestRecord } from '../records.js';
import type { DomainContext } from './context.js';
import { grantOfLease } from './grant.js';
import { mintLease } from './mint-lease.js';

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
  if (!lease || lease.deliveredAt !== null || lease.expiresAt <= ctx.clock.now()) return null;
  // RFC 9449: a bound credential goes only to a read that proves the same key (B8).
  if (lease.cnfJkt !== null && (input.presenterJkt ?? null) !== lease.cnfJkt) return null;
  const issuer = ctx.issuers.get(lease.issuer);
  if (!issuer) {
    throw new CountersignError('CS_ISSUER_UNKNOWN', `issuer ${lease.issuer} is not configured`);
  }
  const grant = grantOfLease(lease, request);

  if (lease.status === 'issuing' && issuer.mint === 'delivery') {
    const now = ctx.clock.now();
    const claimed = await ctx.store.transaction(async (tx) => {
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
    return claimed ? mintLease({ ctx, input: { lease, grant } }) : null;
  }

  if (lease.status !== 'active' || issuer.mint !== 'decision') return null;
  const issued = await issuer.issue(grant);
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
