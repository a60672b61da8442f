import type { ResourceCatalog } from '../catalog.js';
import type { CheckpointSettings } from '../checkpoint.js';
import type { IssuerRegistry, ReceiptSigner } from '../issuer-port.js';
import type { Clock, PolicyEngine } from '../ports.js';
import type { RiskSettings } from '../risk.js';
import type { Store } from '../store-port.js';

/** Tells in-process waiters (long polls) that a request changed; called after commit. */
export interface RequestEvents {
  requestChanged(requestId: string): void;
}

export interface IdGenerator {
  /** A new unique id with a readable prefix, e.g. `req_...`. */
  next(prefix: string): string;
}

/** Everything a use case may touch. Built once by `createServer(config)`. */
export interface DomainContext {
  readonly store: Store;
  readonly clock: Clock;
  /** The current policy engine (hot reload swaps it; a decision reads it once). */
  readonly policy: () => PolicyEngine;
  /**
   * Shadow mode: a candidate policy set evaluated beside the active one on every request,
   * never enforced; where it decides otherwise the difference is recorded. Absent or null: off.
   */
  readonly candidatePolicy?: () => PolicyEngine | null;
  readonly catalog: () => ResourceCatalog;
  /** The configured credential issuers; the catalog names which one serves a resource. */
  readonly issuers: IssuerRegistry;
  readonly receipts: ReceiptSigner;
  readonly risk: RiskSettings;
  readonly checkpoint: CheckpointSettings;
  readonly ids: IdGenerator;
  readonly events: RequestEvents;
  /** Credential lifetime when the agent asks for none (seconds). */
  readonly defaultTtlSeconds: number;
  /**
   * Hash of every setting that changes decisions besides policies and catalog (risk settings,
   * action classes, TTL and deadline defaults, fallback group). Part of the request digest, so
   * an approval never survives a configuration change that would decide differently.
   */
  readonly configVersion: string;
  /** Names of the configured notification channels; each review event is queued once per channel. */
  readonly subscribers: readonly string[];
  /** Action names mapped to classes beyond the built-in ones (`read`, `write`, ...). */
  readonly actionClasses: Readonly<Record<string, string>>;
  /**
   * The most pending reviews one agent may have at once; a request over it is refused with
   * CS_TOO_MANY_PENDING (429) and audited. Absent or null: no cap.
   */
  readonly maxPendingReviewsPerAgent?: number | null;
  /** A task that heartbeats and then stays silent this long is abandoned (seconds); null: never. */
  readonly taskIdleTimeoutSeconds: number | null;
}

/**
 * A value that may be used once: a private-key assertion's `jti` or a DPoP proof's `jti`.
 * `namespace` keeps sources apart (`jwt-bearer:<agent id>`, `dpop:<key thumbprint>`), so an
 * id from one source can never collide with, or pre-empt, an id from another.
 */
export interface OneTimeId {
  readonly namespace: string;
  readonly id: string;
  /** Until when a replay could still verify (epoch ms); the record may be pruned after. */
  readonly expiresAt: number;
}

/**
 * What authenticated one agent call, consumed in the same unit of work as the call's effect.
 * A private-key assertion is one-time; a federated workload token (Kubernetes, GitHub, OIDC)
 * is legitimately reused for its lifetime, so it brings no one-time id of its own; a DPoP
 * proof always does. `oneTimeIds` is exactly what must be consumed: it may be empty.
 */
export interface Assertion {
  readonly agentId: string;
  readonly oneTimeIds: readonly OneTimeId[];
  /**
   * When set, the unit of work also records the agent as seen at this time. The authenticator
   * sets it at most once a minute per agent, so last-seen costs no extra commit.
   */
  readonly seenAt: number | null;
  /** RFC 9449: the JWK thumbprint of the DPoP key this call proved possession of, or null. */
  readonly dpopJkt: string | null;
}
