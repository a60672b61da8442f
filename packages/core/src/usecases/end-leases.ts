import type { AuditActor } from '../audit.js';
import type { LeaseRecord } from '../records.js';
import type { LeaseSelector, StoreTx } from '../store-port.js';
import type { DomainContext } from './context.js';

/**
 * Ends every live lease a selector matches, inside the caller's unit of work, each with its
 * audit event: `lease.revoked` when nothing is left downstream, `lease.revoke_requested` when
 * the reaper must still reach the downstream (the lease is unusable from this commit on).
 */
export async function endLeases(
  ctx: DomainContext,
  tx: Pick<StoreTx, 'revokeLeases' | 'appendAudit'>,
  selector: LeaseSelector,
  reason: string,
  actor: AuditActor,
  now: number,
  note?: string,
): Promise<LeaseRecord[]> {
  const ended = await tx.revokeLeases(selector, now, reason, ctx.issuers.downstream);
  for (const lease of ended) {
    await tx.appendAudit(
      {
        type: lease.status === 'revoked' ? 'lease.revoked' : 'lease.revoke_requested',
        actor,
        requestId: lease.requestId,
        data: {
          lease_id: lease.id,
          reason,
          kind: lease.kind,
          issuer: lease.issuer,
          ...(note === undefined ? {} : { note }),
        },
      },
      now,
    );
  }
  return ended;
}

/** A short, secret-free description of why something failed: a code or a class name. */
export function errorClass(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_.-]{1,48}$/.test(code)) return code;
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^[A-Za-z0-9_]{1,48}$/.test(name) ? name : 'Error';
}
