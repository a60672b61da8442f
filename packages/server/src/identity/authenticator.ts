import type { AgentRecord, Assertion, OneTimeId } from '@countersign/core';

/**
 * One agent call as the identity layer sees it. `url` is the server's configured external
 * base URL (`issuer`) plus the request path, never built from Host or X-Forwarded-* headers
 * (THREATS.md F4): it is what a DPoP proof's `htu` must name.
 */
export interface AgentCall {
  readonly token: string;
  /** The `DPoP` header, or null when none was sent. */
  readonly dpop: string | null;
  readonly method: string;
  readonly url: string;
}

export type AuthMethod = 'private_key_jwt' | 'oidc' | 'kubernetes' | 'github' | 'spiffe';

/** Who called, proven. */
export interface AuthenticatedAgent {
  readonly agent: AgentRecord;
  /** What to consume with the call's effect (one-time ids, last-seen), in its unit of work. */
  readonly assertion: Assertion;
  readonly method: AuthMethod;
}

/** The identity port: turns one call into a proven agent, or throws a coded error. */
export interface AgentAuthenticator {
  /** Throws a CountersignError: CS_TOKEN_* / CS_AGENT_* / CS_DPOP_* (401) or CS_IDENTITY_UNAVAILABLE (503). */
  authenticate(call: AgentCall): Promise<AuthenticatedAgent>;
}

/** What one token verifier proves, before the checks common to every method. */
export interface VerifiedWorkload {
  readonly agent: AgentRecord;
  readonly method: AuthMethod;
  /** One-time ids the token itself carries (a private-key assertion's jti); none for reusable tokens. */
  readonly oneTimeIds: readonly OneTimeId[];
  /** RFC 7800 / RFC 9449 §6: the key the token is bound to (`cnf.jkt`), or null. */
  readonly boundJkt: string | null;
  /** The token's issuer requires a DPoP proof with every call. */
  readonly requireDpop: boolean;
}

/** One way of verifying a token (private-key JWT, one trusted issuer). */
export interface TokenVerifier {
  verify(token: string): Promise<VerifiedWorkload>;
}
