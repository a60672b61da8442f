import { CountersignError } from '@countersign/core';
import type { Context } from 'hono';
import type { ServerDeps } from '../app.js';
import type { AuthenticatedAgent } from '../identity/authenticator.js';

/** Reads `Authorization: Bearer <assertion>` and authenticates the agent; counts failures. */
export async function authenticateAgent(deps: ServerDeps, c: Context): Promise<AuthenticatedAgent> {
  const header = c.req.header('authorization');
  // The token's own shape (compact JWS, canonical base64url) is the authenticator's to judge.
  const match = header ? /^Bearer (\S{1,8192})$/.exec(header) : null;
  try {
    if (!match)
      throw new CountersignError(
        'CS_UNAUTHENTICATED',
        'send an agent assertion as Authorization: Bearer <jwt>',
      );
    return await deps.authenticator.authenticate(match[1]!);
  } catch (error) {
    if (error instanceof CountersignError && error.category === 'unauthenticated') {
      deps.metrics.authnFailures.inc({ code: error.code });
      c.header('WWW-Authenticate', 'Bearer realm="countersign"');
    }
    throw error;
  }
}
