import { CountersignError } from '@countersign/core';
import type { Context } from 'hono';
import type { ServerDeps } from '../app.js';
import type { AuthenticatedAgent } from '../identity/authenticator.js';

/**
 * Reads `Authorization: Bearer <token>` (or `DPoP <token>`, RFC 9449 §7.1, which then needs a
 * proof) and the `DPoP` header, and authenticates the agent; counts failures. The URL a DPoP
 * proof must name is our configured external base URL plus the path: the Host and
 * X-Forwarded-* headers are never read (THREATS.md F4).
 */
export async function authenticateAgent(deps: ServerDeps, c: Context): Promise<AuthenticatedAgent> {
  const header = c.req.header('authorization');
  // The token's own shape (compact JWS, canonical base64url) is the authenticator's to judge.
  const match = header ? /^(Bearer|DPoP) (\S{1,16384})$/.exec(header) : null;
  try {
    if (!match)
      throw new CountersignError(
        'CS_UNAUTHENTICATED',
        'send an agent token as Authorization: Bearer <jwt> (or DPoP <jwt> with a DPoP proof)',
      );
    const dpop = c.req.header('dpop') ?? null;
    if (match[1] === 'DPoP' && dpop === null)
      throw new CountersignError('CS_DPOP_REQUIRED', 'the DPoP scheme needs a DPoP proof header');
    return await deps.authenticator.authenticate({
      token: match[2]!,
      dpop,
      method: c.req.method,
      url: `${deps.config.issuer}${c.req.path}`,
    });
  } catch (error) {
    if (error instanceof CountersignError && error.category === 'unauthenticated') {
      deps.metrics.authnFailures.inc({ code: error.code });
      c.header(
        'WWW-Authenticate',
        `Bearer realm="countersign", DPoP realm="countersign" algs="EdDSA ES256 ES384 PS256 RS256"`,
      );
    }
    throw error;
  }
}
