import type { AgentRecord, Assertion } from '@countersign/core';

/** Who called, proven. The identity port: private-key JWT now; OIDC, SPIFFE and DPoP slot in here. */
export interface AuthenticatedAgent {
  readonly agent: AgentRecord;
  /** The one-time token id to consume with the call's effect. */
  readonly assertion: Assertion;
  readonly method: string;
}

export interface AgentAuthenticator {
  /** Verifies a bearer token; throws a CountersignError with a CS_TOKEN_* / CS_AGENT_* code. */
  authenticate(token: string): Promise<AuthenticatedAgent>;
}
