/** Stored records: what the store port reads and writes. Times are epoch milliseconds. */
import type { Decision, RequestStatus, RiskAssessment } from './types.js';

export interface AgentRecord {
  readonly id: string;
  readonly owner: string;
  readonly boundary: string;
  readonly environment: string;
  readonly trustTier: string;
  readonly status: 'active' | 'suspended';
  readonly publicJwk: Readonly<Record<string, unknown>>;
  readonly jwkThumbprint: string;
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
}

export type LeaseStatus = 'active' | 'revoked';

export interface LeaseRecord {
  readonly id: string;
  readonly requestId: string;
  readonly agentId: string;
  readonly taskId: string;
  readonly kind: string;
  /** The credential's own id (a JWT's `jti`). */
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
}
