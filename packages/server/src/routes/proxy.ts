/**
 * The credential-injecting proxy: `/proxy/<upstream>/<path>`. The agent presents the access
 * token of a `proxy` lease (Authorization: Bearer). Checked, in order, before any byte goes
 * upstream: a configured upstream; the token (signature, typ at+jwt, our issuer, the audience
 * of exactly this upstream's proxy endpoint, expiry); sender constraint (`cnf`); the lease's
 * live state (revoked, expired, task ended, agent suspended: as introspection sees it); the
 * HTTP method against the lease's action; the path against the lease's prefix; the upstream's
 * resolved addresses (K3). Then the upstream's secret is injected and the exchange streams.
 */
import { CountersignError, leaseState } from '@countersign/core';
import { type Context, Hono } from 'hono';
import { importJWK, type JWTPayload, jwtVerify } from 'jose';
import type { ServerDeps } from '../app.js';
import { forward } from '../proxy/forward.js';
import { proxyAudience, proxyTarget } from '../proxy/upstreams.js';

/**
 * One path segment as the agent may send it: RFC 3986 pchar without `;` (matrix parameters
 * some servers strip), with percent-escapes that may not encode `/`, `\`, `.` or controls. An
 * upstream that decodes and normalises again can then never read a different path than the
 * one checked here (THREATS.md F2). `.` and `..` were resolved by the URL parser already.
 */
const SEGMENT = /^(?:[A-Za-z0-9._~!$&'()*+,=:@-]|%[0-9A-Fa-f]{2})+$/;
const FORBIDDEN_ESCAPE = /%(?:2[eEfF]|5[cC]|[01][0-9A-Fa-f]|7[fF])/;

function refused(message: string): never {
  throw new CountersignError('CS_PROXY_FORBIDDEN', message);
}

/** The segments below `/proxy/<upstream>/`; a trailing slash gives a final empty segment. */
export function proxyPathSegments(rest: string): string[] {
  if (rest === '') return [];
  const segments = rest.split('/');
  segments.forEach((s, i) => {
    if (s === '' && i === segments.length - 1) return;
    if (!SEGMENT.test(s) || FORBIDDEN_ESCAPE.test(s) || s === '.' || s === '..') {
      refused(
        'the path has a segment the proxy does not forward (empty, dot, encoded slash or dot, control)',
      );
    }
  });
  return segments;
}

export function proxyRoutes(deps: ServerDeps): Hono {
  const app = new Hono();
  const { ctx, config } = deps;
  const publicKey = importJWK(deps.signingKey.publicJwk, 'EdDSA');

  async function verifyToken(c: Context, upstream: string): Promise<JWTPayload> {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9_.-]{1,8192})$/.exec(header);
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer realm="countersign-proxy"');
      throw new CountersignError(
        'CS_UNAUTHENTICATED',
        'send the proxy lease as Authorization: Bearer <token>',
      );
    }
    try {
      const { payload } = await jwtVerify(match[1]!, await publicKey, {
        algorithms: ['EdDSA'],
        typ: 'at+jwt',
        issuer: config.issuer,
        audience: proxyAudience(config.issuer, upstream),
        requiredClaims: ['exp', 'jti', 'sub'],
        currentDate: new Date(ctx.clock.now()),
        clockTolerance: 0,
      });
      // RFC 8725 §3.10 spirit: one audience, this upstream's; never a list that merely includes it.
      if (payload.aud !== proxyAudience(config.issuer, upstream)) throw new Error('audience');
      return payload;
    } catch (error) {
      const expired = (error as { code?: string }).code === 'ERR_JWT_EXPIRED';
      throw new CountersignError(
        expired ? 'CS_TOKEN_EXPIRED' : 'CS_TOKEN_INVALID',
        expired ? 'the proxy lease expired' : 'not a proxy lease for this upstream',
      );
    }
  }

  app.all('/proxy/*', async (c) => {
    const url = new URL(c.req.url);
    const [name = '', ...restParts] = url.pathname.slice('/proxy/'.length).split('/');
    const upstream = deps.proxyUpstreams.get(name);
    if (!upstream) throw new CountersignError('CS_NOT_FOUND', 'no such upstream');
    const outcome = (label: string) => deps.metrics.proxyRequests.inc({ upstream: name, outcome: label });
    try {
      const payload = await verifyToken(c, name);

      // ---- DPoP (RFC 9449): THE ONE PLACE TO WIRE THE VERIFIER ---------------------------
      // A lease bound to a key (`cnf`) may only be used with a proof of possession of that
      // key. Until the DPoP verifier (packages/server/src/identity/dpop.ts) is merged, such a
      // lease is refused here: fail closed. After the merge, verify the `DPoP` header against
      // payload.cnf.jkt with htm = c.req.method, htu = `${config.issuer}${url.pathname}`
      // (the configured external URL, never the Host header: F4), ath = SHA-256 of the token,
      // and a single-use jti; refuse on any failure.
      if (payload.cnf !== undefined) {
        throw new CountersignError(
          'CS_DPOP_REQUIRED',
          'this lease is bound to a key; proof-of-possession through the proxy is not available yet',
        );
      }
      // --------------------------------------------------------------------------------------

      const state = await leaseState({ ctx, input: { credentialId: String(payload.jti) } });
      if (!state.active) {
        c.header('WWW-Authenticate', 'Bearer realm="countersign-proxy", error="invalid_token"');
        throw new CountersignError('CS_LEASE_INACTIVE', `the lease is no longer valid (${state.why})`);
      }
      const lease = state.lease;
      if (lease.kind !== 'proxy' || lease.issuer !== upstream.issuer || lease.agentId !== payload.sub) {
        throw new CountersignError('CS_TOKEN_INVALID', 'not a proxy lease for this upstream');
      }
      // What the lease allows comes from the stored lease, never from the request (A12).
      const target = proxyTarget(lease.resource);
      if (typeof target === 'string' || target.upstream !== name)
        refused('the lease is for another upstream');
      const allowed = upstream.methods[lease.action] ?? [];
      if (!allowed.includes(c.req.method)) {
        refused(
          `the lease allows ${allowed.join(', ') || 'no method'} for ${lease.action}, not ${c.req.method}`,
        );
      }
      const segments = proxyPathSegments(restParts.join('/'));
      const prefix = target.prefix;
      if (segments.length < prefix.length || prefix.some((p, i) => segments[i] !== p)) {
        refused(`the lease covers /${prefix.join('/')} and below only`);
      }
      const response = await forward({
        upstream,
        method: c.req.method,
        path: segments.length ? `/${segments.join('/')}` : '',
        search: url.search,
        headers: c.req.raw.headers,
        body: c.req.raw.body,
        injection: await upstream.injection(),
        resolve: deps.resolver,
        proxyBase: `${config.issuer}/proxy/${name}`,
        signal: c.req.raw.signal,
      });
      outcome(`${Math.floor(response.status / 100)}xx`);
      deps.log.info(
        { lease_id: lease.id, upstream: name, method: c.req.method, status: response.status },
        'proxied',
      );
      return response;
    } catch (error) {
      outcome((error as { code?: string }).code ?? 'error');
      throw error;
    }
  });

  return app;
}
