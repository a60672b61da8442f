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
  /** A task that heartbeats and then stays silent this long is abandoned (seconds); null: never. */
  readonly taskIdleTimeoutSeconds: number | null;
}

/** A verified one-time agent assertion, consumed in the same unit of work as its effect. */
export interface Assertion {
  readonly issuer: string;
  readonly tokenId: string;
  readonly expiresAt: number;
}
