/**
 * Timing of the lease lifecycle (docs/credentials.md). Pure numbers: the reaper and the
 * delivery path read them; tests move the clock past them.
 */

/**
 * A `delivery` issuer's lease claimed for minting this long ago that is still `issuing` was
 * abandoned (a crash, a lost store) and is revoked: longer than any issuer's own timeouts.
 */
export const MINT_GRACE_SECONDS = 60;

/** A reaper holds a claimed revocation this long; another instance may take it over after. */
export const REVOCATION_CLAIM_SECONDS = 60;

const BACKOFF_BASE_SECONDS = 1;
const BACKOFF_MAX_SECONDS = 300;

/** Seconds until the next attempt after `attempts` failed downstream revocations: 1, 2, 4 … 300. */
export function revocationBackoffSeconds(attempts: number): number {
  if (!Number.isInteger(attempts) || attempts < 1) throw new TypeError('attempts must be a positive integer');
  return Math.min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.min(attempts - 1, 20));
}

/** Reasons a lease ends, as the audit trail and the API spell them. */
export type LeaseEndReason =
  | 'expired'
  | 'task_completed'
  | 'task_failed'
  | 'task_abandoned'
  | 'agent_suspended'
  | 'revoked_by_client'
  | 'revoked_by_admin'
  | 'issue_failed'
  | 'issue_abandoned';
