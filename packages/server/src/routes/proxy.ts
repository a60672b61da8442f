/**
 * The credential-injecting proxy: `/proxy/<upstream>/<path>`. The agent presents the access
 * token of a `proxy` lease (Authorization: Bearer, or DPoP with a proof when the lease is bound
 * to a key). Checked, in order, before any byte goes
 * upstream: a configured upstream; the token (signature, typ at+jwt, our issuer, the audience
 * of exactly this upstream's proxy endpoint, expiry); sender constraint (`cnf`); the lease's
 * live state (revoked, expired, task ended, agent suspended: as introspection sees it); the
 * HTTP method against the lease's action; the path against the lease's prefix; the upstream's
 * resolved addresses (K3). Then the upstream's secret is injected and the exchange streams.
 */
import { CountersignError, leaseState, runUnit } from '@countersign/core';
import { type Context, Hono } from 'hono';
import { importJWK, type JWTPayload, jwtVerify } from 'jose';
import type { ServerDeps } from '../app.js';
import { verifyDpopProof } from '../identity/dpop.js';
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

  async function verifyToken(
    c: Context,
    upstream: string,
  ): Promise<{ payload: JWTPayload; token: string; scheme: 'Bearer' | 'DPoP' }> {
    const header = c.req.header('authorization') ?? '';
    // RFC 9449 §7.1: a DPoP-bound token travels with the DPoP scheme, a bearer token with Bearer.
    const match = /^(Bearer|DPoP) ([A-Za-z0-9_.-]{1,8192})$/.exec(header);
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer realm="countersign-proxy", DPoP realm="countersign-proxy"');
      throw new CountersignError(
        'CS_UNAUTHENTICATED',
        'send the proxy lease as Authorization: Bearer <token> (or DPoP <token> with a DPoP proof)',
      );
    }
    const scheme = match[1] as 'Bearer' | 'DPoP';
    const token = match[2]!;
    try {
      const { payload } = await jwtVerify(token, await publicKey, {
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
      return { payload, token, scheme };
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
      const { payload, token, scheme } = await verifyToken(c, name);

      // DPoP (RFC 9449 §7): a lease bound to a key (`cnf.jkt`) is usable only with a fresh,
      // single-use proof of that key over this method and URL. The URL is the configured
      // external one, never the Host header (THREATS.md F4); `ath` binds the proof to this token.
      const jkt = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
      if (jkt !== undefined || scheme === 'DPoP') {
        const proof = c.req.header('dpop');
        if (typeof jkt !== 'string' || scheme !== 'DPoP' || !proof) {
          c.header('WWW-Authenticate', 'DPoP realm="countersign-proxy", error="invalid_token"');
          throw new CountersignError(
            'CS_DPOP_REQUIRED',
            typeof jkt !== 'string'
              ? 'this lease is a bearer lease: send it as Authorization: Bearer'
              : 'this lease is bound to a key: send it as Authorization: DPoP <token> with a DPoP proof',
          );
        }
        let verified: Awaited<ReturnType<typeof verifyDpopProof>>;
        try {
          verified = await verifyDpopProof({
            proof,
            method: c.req.method,
            url: `${config.issuer}${url.pathname}`,
            accessToken: token,
            now: ctx.clock.now(),
            expectedJkt: jkt,
          });
        } catch (error) {
          c.header('WWW-Authenticate', 'DPoP realm="countersign-proxy", error="invalid_dpop_proof"');
          throw error;
        }
        // One proof, one use, on every instance and across restarts (B8).
        await runUnit(ctx.store, 'consumeAssertion', {
          agentId: String(payload.sub),
          oneTimeIds: [verified.oneTimeId],
          seenAt: null,
          dpopJkt: verified.jkt,
        });
      }

      const state = await leaseState({ ctx, input: { credentialId: String(payload.jti) } });
      if (!state.active) {
        c.header('WWW-Authenticate', 'Bearer realm="countersign-proxy", error="invalid_token"');
        throw new CountersignError('CS_LEASE_INACTIVE', `the lease is no longer valid (${state.why})`);
      }
      const lease = state.lease;
      if (
        lease.kind !== 'proxy' ||
        lease.issuer !== upstream.issuer ||
        lease.agentId !== payload.sub ||
        lease.cnfJkt !== (typeof jkt === 'string' ? jkt : null)
      ) {
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
