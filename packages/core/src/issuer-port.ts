/** The issuer port: one kind of credential, minted for one grant. */

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
}

export interface IssuedCredential {
  /** The wire form handed to the agent once, after commit. Secret: never logged or audited. */
  readonly credential: Readonly<Record<string, unknown>>;
  /** The credential's own id (a JWT's `jti`), safe to store and audit. */
  readonly credentialId: string;
  /** SHA-256 fingerprint of the secret bytes. */
  readonly fingerprint: string;
  /** What the credential allows, for the lease record (RFC 9396 authorization_details). */
  readonly scope: Readonly<Record<string, unknown>>;
}

export interface Issuer {
  readonly kind: string;
  /** Makes the credential. Nothing leaves the process until the lease record commits. */
  issue(grant: Grant): Promise<IssuedCredential>;
}

/** Signs approval receipts: compact JWS anyone can verify offline against the JWKS. */
export interface ReceiptSigner {
  sign(claims: Readonly<Record<string, unknown>>): Promise<string>;
}
