/**
 * Where an agent's identity token comes from. Three sources: its own private key (a fresh
 * one-time assertion per call, RFC 7523 shape), or a callback returning a platform token
 * (Kubernetes projected token, GitHub Actions OIDC token, a cloud workload token, a SPIFFE
 * JWT-SVID from the Workload API). A token file re-read on rotation lives in `./node`.
 */
import { importJWK, type JWK, SignJWT } from 'jose';

export interface TokenSource {
  /** A token for a call to `audience` (our issuer URL). */
  token(audience: string): Promise<string>;
}

export interface AgentCredentials {
  /** The agent's registered id: `iss` and `sub` of every assertion. */
  readonly agentId: string;
  /** The agent's private JWK (Ed25519). */
  readonly privateJwk: JWK;
}

/** Signs a one-time assertion for `audience`, valid for `lifetimeSeconds` (at most 300). */
export async function createAssertion(
  credentials: AgentCredentials,
  audience: string,
  lifetimeSeconds = 60,
): Promise<string> {
  const key = await importJWK(credentials.privateJwk, 'EdDSA');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setIssuer(credentials.agentId)
    .setSubject(credentials.agentId)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(`${lifetimeSeconds}s`)
    .setJti(crypto.randomUUID())
    .sign(key);
}

/** The zero-infrastructure source: a registered Ed25519 key, a new assertion per call. */
export function privateKeySource(credentials: AgentCredentials): TokenSource {
  return { token: (audience) => createAssertion(credentials, audience) };
}

/**
 * A platform token from your code: called before every request, so return the current token
 * (cache and refresh it as your platform says). Workload tokens are reused for their lifetime.
 */
export function callbackSource(getToken: (audience: string) => string | Promise<string>): TokenSource {
  return {
    async token(audience) {
      const token = (await getToken(audience)).trim();
      if (!token) throw new TypeError('the token callback returned an empty token');
      return token;
    },
  };
}
