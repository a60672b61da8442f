/**
 * mintLease: the second half of THREATS.md H1 for a `delivery` issuer. The lease intent has
 * committed with its decision and audit events, and the caller has claimed it for delivery
 * (`markLeaseDelivered`, a compare-and-set: one caller only). Now the issuer makes the
 * credential, and `issuing → active` commits with its `lease.issued` event before the
 * credential is returned to anyone (invariant 1).
 *
 * If minting fails, the lease ends (`revoke_pending`: the reaper removes whatever the issuer
 * may have made) and the caller gets CS_ISSUER_UNAVAILABLE. If the lease ended while minting
 * (task completed, agent suspended, admin revoke), activation loses the compare-and-set and the
 * credential never leaves the process. If the process dies between minting and activation,
 * the reaper finds the stale intent after MINT_GRACE_SECONDS and revokes it.
 */
import { CountersignError } from '../errors.js';
import type { Grant } from '../issuer-port.js';
import type { LeaseRecord } from '../records.js';
import type { DomainContext } from './context.js';
import { errorClass } from './end-leases.js';
import { issuedEventData, issuerActor } from './lease-record.js';

export async function mintLease({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { lease: LeaseRecord; grant: Grant };
}): Promise<Readonly<Record<string, unknown>> | null> {
  const { lease, grant } = input;
  const issuer = ctx.issuers.get(lease.issuer);
  let issued: Awaited<ReturnType<NonNullable<typeof issuer>['issue']>>;
  try {
    if (issuer?.mint !== 'delivery') {
      throw new CountersignError('CS_ISSUER_UNKNOWN', `issuer ${lease.issuer} is not configured`);
    }
    issued = await issuer.issue(grant);
    if (issued.credentialId !== lease.credentialId) {
      throw new TypeError(`issuer ${lease.issuer} minted another credential than it planned`);
    }
  } catch (error) {
    await abandonIntent(ctx, lease, error);
    throw new CountersignError(
      'CS_ISSUER_UNAVAILABLE',
      'the credential could not be made; the lease has ended (ask again)',
      { cause: error },
    );
  }
  const now = ctx.clock.now();
  const activated = await ctx.store.transaction(async (tx) => {
    if (!(await tx.activateLease(lease.id, issued.fingerprint, now))) return false;
    await tx.appendAudit(
      {
        type: 'lease.issued',
        actor: issuerActor(lease),
        requestId: lease.requestId,
        data: issuedEventData(lease, issued.fingerprint),
      },
      now,
    );
    return true;
  });
  // Lost the race to a revocation: it left the lease in revoke_pending for the reaper.
  return activated ? issued.credential : null;
}

/** Minting failed: the lease ends and the reaper removes whatever may exist downstream. */
async function abandonIntent(ctx: DomainContext, lease: LeaseRecord, error: unknown): Promise<void> {
  const now = ctx.clock.now();
  const downstream = ctx.issuers.downstream.includes(lease.issuer);
  await ctx.store.transaction(async (tx) => {
    if (
      !(await tx.endLease(
        lease.id,
        'issuing',
        downstream ? 'revoke_pending' : 'revoked',
        now,
        'issue_failed',
      ))
    )
      return;
    await tx.appendAudit(
      {
        type: 'lease.issue_failed',
        actor: issuerActor(lease),
        requestId: lease.requestId,
        data: { lease_id: lease.id, issuer: lease.issuer, error: errorClass(error) },
      },
      now,
    );
  });
}
