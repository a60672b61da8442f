/** Stored records: what the store port reads and writes. Times are epoch milliseconds. */
import type { Decision, Outcome, RequestStatus, RiskAssessment } from './types.js';

export interface AgentRecord {
  readonly id: string;
  readonly owner: string;
  readonly boundary: string;
  readonly environment: string;
  readonly trustTier: string;
  readonly status: 'active' | 'suspended';
  /** Ed25519 public JWK for private-key JWT assertions; null for a workload-identity-only agent. */
  readonly publicJwk: Readonly<Record<string, unknown>> | null;
  readonly jwkThumbprint: string | null;
  readonly createdAt: number;
  /** After this time (epoch ms) the agent's tokens are refused; null: no expiry. */
  readonly expiresAt: number | null;
  /** Last authenticated call, recorded at most about once a minute; null: never seen. */
  readonly lastSeenAt: number | null;
}

/**
 * A federated workload identity bound to one agent: the token issuer and subject. A pair is
 * bound to one agent at most (NHI9, THREATS.md B13): the store's key enforces it.
 */
export interface WorkloadIdentityBinding {
  readonly issuer: string;
  readonly subject: string;
  readonly agentId: string;
  readonly createdAt: number;
}

export interface AccessRequestRecord {
  readonly id: string;
  readonly agentId: string;
  readonly action: string;
  readonly resource: string;
  readonly taskId: string;
  readonly status: RequestStatus;
  /** `sha256:<hex>` over the canonical decision fields. */
  readonly digest: string;
  /** The canonical JSON (RFC 8785) of the decision fields, exactly the bytes the digest covers. */
  readonly canonical: string;
  readonly decision: Decision;
  readonly risk: RiskAssessment;
  readonly idempotencyKey: string | null;
  /** Hash of the request body as received, to tell a retry from a different request. */
  readonly bodyHash: string;
  readonly createdAt: number;
  readonly decidedAt: number | null;
  /** Review deadline (pending requests only). */
  readonly deadlineAt: number | null;
  readonly leaseId: string | null;
  /** RFC 9449: the DPoP key the request was made with; its lease is bound to it (`cnf.jkt`). */
  readonly cnfJkt: string | null;
}

/**
 * Where a lease is in its life (docs/credentials.md):
 * - `issuing`: the intent is committed with its decision; a `delivery` issuer has not minted yet;
 * - `active`: the credential exists and may be used until `expiresAt`;
 * - `revoke_pending`: the lease has ended but its downstream has not confirmed the revocation
 *   yet; the reaper retries with backoff (THREATS.md C5);
 * - `revoked`: ended, and nothing of it is left downstream.
 * Only `active` leases, before `expiresAt`, with a live task and agent, are usable.
 */
export type LeaseStatus = 'issuing' | 'active' | 'revoke_pending' | 'revoked';

export interface LeaseRecord {
  readonly id: string;
  readonly requestId: string;
  readonly agentId: string;
  readonly taskId: string;
  readonly kind: string;
  /** The configured issuer that made it (catalog `issuer:`), which also revokes it. */
  readonly issuer: string;
  readonly action: string;
  readonly resource: string;
  /** The credential's own id (a JWT's `jti`, a database role name). */
  readonly credentialId: string;
  /** SHA-256 fingerprint of the credential bytes: never the credential itself (invariant 7). */
  readonly fingerprint: string;
  readonly audience: string;
  readonly scope: Readonly<Record<string, unknown>>;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly status: LeaseStatus;
  readonly revokedAt: number | null;
  readonly revokeReason: string | null;
  /** When the credential was handed to the agent (once), or claimed for minting. */
  readonly deliveredAt: number | null;
  /** RFC 9449 `cnf.jkt`: the credential is usable only with a proof from this key; null: bearer. */
  readonly cnfJkt: string | null;
  /** Failed downstream revocation attempts so far. */
  readonly revokeAttempts: number;
  /** When the reaper tries the downstream revocation next (`revoke_pending` only). */
  readonly nextRevokeAt: number | null;
  /** A reaper instance holds the revocation until then (compare-and-set claim). */
  readonly claimedUntil: number | null;
  /** Why the last downstream revocation failed (an error class, never a secret). */
  readonly lastRevokeError: string | null;
  /** When the downstream confirmed the revocation. */
  readonly revokeConfirmedAt: number | null;
}

/** How a task ended. */
export type TaskOutcome = 'completed' | 'failed' | 'abandoned';

export interface TaskRecord {
  readonly agentId: string;
  readonly taskId: string;
  /** Null while the task runs. */
  readonly outcome: TaskOutcome | null;
  readonly endedAt: number | null;
  readonly reason: string | null;
  /** The last heartbeat, when the agent sends them. */
  readonly lastHeartbeatAt: number | null;
}

export type ReviewerStatus = 'active' | 'removed';

/** A human reviewer: strongly authenticated (passkey), member of groups. */
export interface ReviewerRecord {
  readonly id: string;
  readonly email: string;
  readonly groups: readonly string[];
  readonly status: ReviewerStatus;
  /** The opaque WebAuthn user handle (never the email). */
  readonly webauthnUserId: string;
  readonly createdAt: number;
}

/** A registered passkey. */
export interface ReviewerCredentialRecord {
  /** The credential id, base64url. */
  readonly id: string;
  readonly reviewerId: string;
  /** COSE public key, base64url. */
  readonly publicKey: string;
  readonly counter: number;
  readonly transports: readonly string[];
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

export interface InviteRecord {
  readonly tokenHash: string;
  readonly email: string;
  readonly groups: readonly string[];
  readonly expiresAt: number;
  readonly usedAt: number | null;
  readonly createdAt: number;
}

export interface SessionRecord {
  readonly tokenHash: string;
  readonly reviewerId: string;
  readonly createdAt: number;
  readonly lastSeenAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
}

export type ChallengePurpose = 'enroll' | 'login' | 'decision' | 'adopt_policy';
export type Verdict = 'approve' | 'deny';

/** A one-time WebAuthn challenge. For decisions the challenge is derived, never random alone. */
export interface ChallengeRecord {
  readonly id: string;
  readonly purpose: ChallengePurpose;
  readonly reviewerId: string | null;
  readonly requestId: string | null;
  readonly verdict: Verdict | null;
  readonly nonce: string;
  /** base64url of the challenge bytes. */
  readonly challenge: string;
  readonly expiresAt: number;
  readonly usedAt: number | null;
}

export interface VoteRecord {
  readonly requestId: string;
  readonly reviewerId: string;
  readonly verdict: Verdict;
  /** SHA-256 of the WebAuthn assertion the vote rests on. */
  readonly assertionHash: string;
  readonly credentialId: string;
  readonly createdAt: number;
}

/** One notification for one subscriber, written with the change it announces. */
export interface OutboxRecord {
  readonly id: string;
  readonly subscriber: string;
  readonly type: string;
  readonly requestId: string | null;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly deliveredAt: number | null;
  readonly failedAt: number | null;
  readonly lastError: string | null;
  readonly createdAt: number;
}

/**
 * An envelope-encrypted secret (docs/credentials.md): the value under its own data key
 * (AES-256-GCM), the data key wrapped by the master key. Base64url text; the AAD binds table,
 * column, name, version and master key id, so a ciphertext moved anywhere else fails (L2).
 */
export interface SealedSecretRecord {
  readonly name: string;
  readonly version: number;
  readonly ciphertext: string;
  readonly nonce: string;
  readonly wrappedKey: string;
  readonly wrapNonce: string;
  /** Which master key wrapped the data key. */
  readonly keyId: string;
  /** Keyed fingerprint of the value (HMAC), what the audit trail records. */
  readonly fingerprint: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** The first time a reviewer opened a review's evidence pack (rubber-stamp signals). */
export interface EvidenceViewRecord {
  readonly requestId: string;
  readonly reviewerId: string;
  readonly viewedAt: number;
}

/** A candidate policy set's decision that differed from the enforced one (shadow mode). */
export interface ShadowDecisionRecord {
  readonly requestId: string;
  readonly agentId: string;
  readonly action: string;
  readonly resource: string;
  readonly activeVersion: string;
  readonly activeOutcome: Outcome;
  readonly activeGroup: string | null;
  readonly candidateVersion: string;
  readonly candidateOutcome: Outcome;
  readonly candidateGroup: string | null;
  readonly candidatePolicies: readonly string[];
  readonly createdAt: number;
}
