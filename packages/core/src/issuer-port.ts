/**
 * The issuer port: one kind of credential, minted for one grant and revoked when its lease
 * ends. docs/credentials.md describes the lifecycle; the issuer contract suite
 * (test/issuers/contract.test.ts) runs every kind through it.
 */
import type { LeaseRecord } from './records.js';

/** An allow outcome for one request, automatic or approved. One-shot: one lease at most. */
export interface Grant {
  readonly leaseId: string;
  readonly requestId: string;
  readonly agentId: string;
  readonly taskId: string;
  readonly action: string;
  readonly resource: string;
  readonly audience: string;
  readonly requestDigest: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  /**
   * RFC 9449 §6: when present the credential is sender-constrained to this DPoP key and an
   * issuer that can express it must (an access token's `cnf.jkt`).
   */
  readonly cnf?: { readonly jkt: string };
  /** The configured issuer (catalog `issuer:`) that serves the resource. */
  readonly issuer: string;
}

export interface IssuedCredential {
  /** The wire form handed to the agent once, after commit. Secret: never logged or audited. */
  readonly credential: Readonly<Record<string, unknown>>;
  /** The credential's own id (a JWT's `jti`, a role name), safe to store and audit. */
  readonly credentialId: string;
  /** SHA-256 fingerprint of the secret bytes. */
  readonly fingerprint: string;
  /** What the credential allows, for the lease record (RFC 9396 authorization_details). */
  readonly scope: Readonly<Record<string, unknown>>;
}

/** What a lease records about its credential before the credential exists. */
export interface CredentialPlan {
  readonly credentialId: string;
  readonly scope: Readonly<Record<string, unknown>>;
}

export interface Issuer {
  /** The credential kind: `access_token`, `postgres_role`, `proxy`, `sealed_secret`. */
  readonly kind: string;
  /**
   * When the credential is made.
   * - `decision`: `issue` has no effect outside this process and is deterministic for a grant
   *   (a signature). It runs before the decision's unit of work; an approved lease is minted
   *   again at delivery and must match the recorded fingerprint. Nothing secret is stored.
   * - `delivery`: `issue` has an effect elsewhere (a database role, a released secret) and can
   *   never be repeated. The lease intent commits first with the decision and its audit events;
   *   `issue` runs once, for the first read that claims the lease, and its result is committed
   *   (`active`) before any byte of it leaves the process (THREATS.md H1, invariant 1).
   */
  readonly mint: 'decision' | 'delivery';
  /**
   * True when `revoke` must reach a downstream system. Such leases wait in `revoke_pending`
   * until the downstream confirms; they are never marked revoked on hope (THREATS.md C5).
   */
  readonly downstream: boolean;
  /**
   * Null when this issuer can make a credential for `action` on `resource`; otherwise why not
   * (safe to show the agent). Checked at decision time, so nothing that cannot be issued is
   * ever sent to a reviewer. No side effect (it may read, e.g. whether a sealed secret exists).
   */
  supports(request: {
    readonly action: string;
    readonly resource: string;
  }): string | null | Promise<string | null>;
  /** The credential id and scope, known before minting. Pure. */
  plan(grant: Grant): CredentialPlan;
  /** Makes the credential. Its bytes leave the process only after the lease is committed `active`. */
  issue(grant: Grant): Promise<IssuedCredential>;
  /**
   * Takes the credential away downstream. Idempotent: revoking what is already gone resolves.
   * Resolves only when the downstream confirmed; throws otherwise (the reaper retries).
   */
  revoke(lease: LeaseRecord): Promise<void>;
}

/** The configured issuers, by name. An unknown name is a deny (invariant 4). */
export interface IssuerRegistry {
  get(name: string): Issuer | undefined;
  /** Names of the issuers whose revocation reaches a downstream system. */
  readonly downstream: readonly string[];
}

/** The issuer every catalog entry without `issuer:` uses: a signed access token. */
export const DEFAULT_ISSUER = 'access_token';

/** Signs approval receipts: compact JWS anyone can verify offline against the JWKS. */
export interface ReceiptSigner {
  sign(claims: Readonly<Record<string, unknown>>): Promise<string>;
}
