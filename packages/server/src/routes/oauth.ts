/**
 * RFC 7662 introspection and RFC 7009 revocation of leases. Callers authenticate as an agent
 * (private-key JWT; an agent sees only its own leases) or as a configured resource server
 * (HTTP Basic with a secret whose SHA-256 is in config).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CountersignError, leaseState, revokeLease, runUnit } from '@countersign/core';
import { type Context, Hono } from 'hono';
import { decodeProtectedHeader, importJWK, type JWTPayload, jwtVerify } from 'jose';
import type { ServerDeps } from '../app.js';
import { authenticateAgent } from '../middleware/agent-auth.js';
import { limitBody } from '../middleware/json.js';

type Caller =
  /** `dpopJkt`: the key the agent proved possession of on this call (RFC 9449), or null. */
  { kind: 'agent'; id: string; dpopJkt: string | null } | { kind: 'resource_server'; id: string };

async function authenticateCaller(deps: ServerDeps, c: Context): Promise<Caller> {
  const header = c.req.header('authorization') ?? '';
  if (header.startsWith('Basic ')) {
    let id = '';
    let secret = '';
    let sep = -1;
    try {
      // RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      sep = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, sep));
      secret = decodeURIComponent(decoded.slice(sep + 1));
    } catch {
      sep = -1; // malformed: refused below like a wrong secret
    }
    const known = deps.config.resourceServers.find((r) => r.id === id);
    const presented = createHash('sha256').update(secret).digest();
    const expected = Buffer.from(known?.secretSha256 ?? '0'.repeat(64), 'hex');
    if (sep > 0 && known && timingSafeEqual(presented, expected)) return { kind: 'resource_server', id };
    deps.metrics.authnFailures.inc({ code: 'CS_UNAUTHENTICATED' });
    throw new CountersignError('CS_UNAUTHENTICATED', 'unknown resource server or wrong secret');
  }
  const who = await authenticateAgent(deps, c);
  await runUnit(deps.ctx.store, 'consumeAssertion', who.assertion);
  return { kind: 'agent', id: who.agent.id, dpopJkt: who.assertion.dpopJkt };
}

async function formToken(c: Context): Promise<string> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      'Content-Type must be application/x-www-form-urlencoded',
    );
  }
  const text = await c.req.text();
  if (text.length > 16 * 1024) throw new CountersignError('CS_BODY_TOO_LARGE', 'body too large');
  const token = new URLSearchParams(text).get('token');
  if (!token) throw new CountersignError('CS_INVALID_REQUEST', 'the token parameter is required');
  return token;
}

/** Verifies one of our own access tokens; null when it is not one (any failure). */
async function verifyOwnToken(deps: ServerDeps, token: string): Promise<JWTPayload | null> {
  try {
    if (decodeProtectedHeader(token).typ !== 'at+jwt') return null;
    const key = await importJWK(deps.signingKey.publicJwk, 'EdDSA');
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['EdDSA'],
      issuer: deps.config.issuer,
      typ: 'at+jwt',
      requiredClaims: ['exp', 'jti', 'sub'],
      currentDate: new Date(deps.ctx.clock.now()),
    });
    return payload;
  } catch {
    return null;
  }
}

function oauthError(c: Context, error: unknown) {
  if (error instanceof CountersignError && error.category === 'unauthenticated') {
    c.header('WWW-Authenticate', 'Bearer realm="countersign", Basic realm="countersign"');
    return c.json({ error: 'invalid_client', error_description: error.message, code: error.code }, 401);
  }
  if (error instanceof CountersignError && error.category === 'invalid_request') {
    return c.json({ error: 'invalid_request', error_description: error.message, code: error.code }, 400);
  }
  throw error;
}

/** Token requests are small; refuse big bodies before reading them. */
const formBodyLimit = limitBody(16 * 1024, (c) =>
  c.json({ error: 'invalid_request', error_description: 'body too large', code: 'CS_BODY_TOO_LARGE' }, 413),
);

/** Authenticates the caller and reads `token`; an RFC-shaped error answer when either fails. */
async function tokenRequest(
  deps: ServerDeps,
  c: Context,
): Promise<{ caller: Caller; token: string } | Response> {
  try {
    const caller = await authenticateCaller(deps, c);
    return { caller, token: await formToken(c) };
  } catch (error) {
    return oauthError(c, error);
  }
}

export function oauthRoutes(deps: ServerDeps): Hono {
  const app = new Hono();

  app.post('/oauth/introspect', formBodyLimit, async (c) => {
    const parsed = await tokenRequest(deps, c);
    if (parsed instanceof Response) return parsed;
    const { caller, token } = parsed;
    const payload = await verifyOwnToken(deps, token);
    if (!payload) return c.json({ active: false });
    const state = await leaseState({ ctx: deps.ctx, input: { credentialId: payload.jti! } });
    // An agent may introspect only its own leases; others' look inactive (RFC 7662 §2.2).
    if (!state.active || (caller.kind === 'agent' && state.lease.agentId !== caller.id))
      return c.json({ active: false });
    const lease = state.lease;
    // B8, B11: an agent presenting a DPoP-bound lease must prove possession of its key on this
    // very call; without the proof the lease is of no use to it, so it looks inactive.
    if (caller.kind === 'agent' && lease.cnfJkt !== null && caller.dpopJkt !== lease.cnfJkt)
      return c.json({ active: false });
    return c.json({
      active: true,
      token_type: lease.cnfJkt ? 'DPoP' : 'Bearer',
      // RFC 9449 §6.2: a resource server learns the binding here and checks the proof itself.
      ...(lease.cnfJkt ? { cnf: { jkt: lease.cnfJkt } } : {}),
      iss: payload.iss,
      sub: payload.sub,
      aud: payload.aud,
      client_id: lease.agentId,
      exp: payload.exp,
      iat: payload.iat,
      jti: payload.jti,
      task_id: lease.taskId,
      lease_id: lease.id,
      authorization_details: (lease.scope as { authorization_details?: unknown }).authorization_details,
    });
  });

  app.post('/oauth/revoke', formBodyLimit, async (c) => {
    const parsed = await tokenRequest(deps, c);
    if (parsed instanceof Response) return parsed;
    const { caller, token } = parsed;
    const payload = await verifyOwnToken(deps, token);
    if (payload) {
      const state = await leaseState({ ctx: deps.ctx, input: { credentialId: payload.jti! } });
      const lease = state.lease;
      // RFC 7009 §2.2: invalid or foreign tokens get 200 too; nothing is revealed.
      if (lease && (caller.kind === 'resource_server' || lease.agentId === caller.id)) {
        const ended = await revokeLease({
          ctx: deps.ctx,
          input: { leaseId: lease.id, reason: 'revoked_by_client' },
          actor: { type: caller.kind === 'agent' ? 'agent' : 'system', id: caller.id },
        });
        if (ended?.status === 'revoke_pending') await deps.reaper.revokeNow([ended.id]);
      }
    }
    return c.body(null, 200);
  });

  return app;
}
