/**
 * The credential-injecting proxy against a real local upstream: what reaches the upstream,
 * what the agent may do with its lease, and what it never sees (THREATS.md B3, B8, C4, C6, F2, F3).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../e2e/support/live-server.js';
import { dpopProof, newDpopKey } from '../support/dpop.js';
import { type Harness, startHarness, type TestAgent } from '../support/harness.js';
import { addCatalogEntries, addSecretFile, editConfig, proxyKind } from './kinds.js';

const WRITE_POLICY = `
@id("test-write-staging")
@reason("test: writes in staging are routine")
permit (principal, action == Countersign::Action::"write", resource)
when { resource.catalogued && resource.environment == "staging" };
`;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('credential proxy', () => {
  const kind = proxyKind();
  let h: Harness;
  let agent: TestAgent;
  let task = 0;

  beforeEach(async () => {
    await kind.setup!();
    h = await startHarness({
      configure: (home) => {
        kind.configure(home);
        writeFileSync(join(home, 'policies', 'test-writes.cedar'), WRITE_POLICY);
        const basicFile = addSecretFile(home, 'basic.secret', 'basic-secret-value');
        const headerFile = addSecretFile(home, 'header.secret', 'header-secret-value');
        editConfig(home, (c) => {
          c.issuers.api.upstreams.echo.max_request_bytes = 1024 * 1024;
          c.issuers.api.upstreams['echo-basic'] = {
            url: `${kind.upstream.url}/base`,
            inject: { type: 'basic', username: 'svc', secret_file: basicFile },
            allow_private_networks: true,
          };
          c.issuers.api.upstreams['echo-header'] = {
            url: `${kind.upstream.url}/base`,
            inject: { type: 'header', header: 'X-Api-Key', prefix: 'Key ', secret_file: headerFile },
            allow_private_networks: true,
          };
        });
        addCatalogEntries(
          home,
          `  - pattern: https://echo-basic/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: api
  - pattern: https://echo-header/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: api
`,
        );
      },
    });
    agent = await h.addAgent('spiffe://acme.dev/agent/proxy', { environment: 'staging' });
  });
  afterEach(async () => {
    await h.close();
    await kind.teardown!();
  });

  async function lease(resource = 'https://echo/v1', action = 'read'): Promise<string> {
    const { json } = await h.requestAccess(agent, {
      action,
      resource,
      intent: { purpose: 'proxy tests', task_id: `t-${++task}` },
    });
    expect(json.status, JSON.stringify(json.decision)).toBe('allowed');
    expect(json.credential.type).toBe('proxy');
    return json.credential.access_token;
  }

  const through = (
    path: string,
    token: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) =>
    h.call(init.method ?? 'GET', path, {
      token,
      headers: init.headers ?? {},
      ...(init.body !== undefined ? { rawBody: init.body } : {}),
    });

  it('C4 the upstream gets its own secret, never the lease; hop-by-hop and forwarding headers are dropped both ways', async () => {
    const token = await lease();
    const { json } = await h.requestAccess(agent, {
      action: 'read',
      resource: 'https://echo/v1',
      intent: { purpose: 'proxy tests', task_id: 'url' },
    });
    expect(json.credential.proxy_url).toBe('http://localhost:8787/proxy/echo/v1');
    const res = await through('/proxy/echo/v1/echo/ping?q=1&r=%20', token, {
      headers: {
        connection: 'close, x-hop-secret',
        'x-hop-secret': 'must-not-pass',
        'x-forwarded-for': '10.0.0.1',
        forwarded: 'for=10.0.0.1',
        cookie: 'session=abc',
        'proxy-authorization': 'Basic eDp5',
        te: 'trailers',
        'x-custom': 'kept',
      },
    });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as any;
    expect(seen.url).toBe('/base/v1/echo/ping?q=1&r=%20');
    expect(seen.headers.authorization).toBe(`sha256:${sha(`Bearer ${kind.upstreamSecret}`)}`);
    expect(seen.headers.host).toBe(`127.0.0.1:${kind.upstream.port}`);
    expect(seen.headers['x-custom']).toBe('kept');
    for (const gone of [
      'x-hop-secret',
      'x-forwarded-for',
      'forwarded',
      'cookie',
      'proxy-authorization',
      'te',
    ]) {
      expect(seen.headers, gone).not.toHaveProperty(gone);
    }
    expect(JSON.stringify(seen)).not.toContain(token.split('.')[2]);
    // The upstream's hop-by-hop fields stay on its hop.
    expect(res.headers.get('x-upstream')).toBe('yes');
    // Never cacheable, whatever the upstream said; never sniffed.
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-hop')).toBeNull();
    expect(res.headers.get('connection')).toBeNull();
    // Basic and custom-header injection.
    const basic = (await (
      await through('/proxy/echo-basic/v1/x', await lease('https://echo-basic/v1'))
    ).json()) as any;
    expect(basic.headers.authorization).toBe(
      `sha256:${sha(`Basic ${Buffer.from('svc:basic-secret-value').toString('base64')}`)}`,
    );
    const header = (await (
      await through('/proxy/echo-header/v1/x', await lease('https://echo-header/v1'))
    ).json()) as any;
    expect(header.headers['x-api-key']).toBe(`sha256:${sha('Key header-secret-value')}`);
    expect(header.headers).not.toHaveProperty('authorization');
    // Nothing the agent could read carries a secret: not the answers, not the audit trail.
    const events = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) events.push(e);
    for (const secret of [kind.upstreamSecret, 'basic-secret-value', 'header-secret-value']) {
      expect(JSON.stringify(events)).not.toContain(secret);
      expect(JSON.stringify([seen, basic, header])).not.toContain(secret);
    }
  });

  it('C6 F2 F3 the method and the path must fall inside the lease; nothing else reaches the upstream', async () => {
    const token = await lease('https://echo/v1/echo');
    const before = kind.upstream.requests.length;
    const refused: Array<[string, string]> = [
      ['POST', '/proxy/echo/v1/echo/ping'],
      ['DELETE', '/proxy/echo/v1/echo/ping'],
      ['PUT', '/proxy/echo/v1/echo'],
      ['GET', '/proxy/echo/v1/other'],
      ['GET', '/proxy/echo/v1'],
      ['GET', '/proxy/echo/v1/echoes/ping'],
      ['GET', '/proxy/echo/V1/echo/ping'],
      ['GET', '/proxy/echo/v1/echo/../../admin'],
      ['GET', '/proxy/echo/v1/echo/%2e%2e/%2e%2e/admin'],
      ['GET', '/proxy/echo/v1/echo%2F..%2F..%2Fadmin'],
      ['GET', '/proxy/echo/v1/echo/..%2F..%2Fadmin'],
      ['GET', '/proxy/echo/v1/echo/%2E%2E%5Cadmin'],
      ['GET', '/proxy/echo/v1/echo/a%00b'],
      ['GET', '/proxy/echo/v1/echo/a%0d%0aX-Injected:%201'],
      ['GET', '/proxy/echo/v1/echo;jsessionid=1/ping'],
      ['GET', '/proxy/echo/v1/echo/..;/..;/admin'],
      ['GET', '/proxy/echo//v1/echo/ping'],
      ['GET', '/proxy/echo/v1//echo/ping'],
      ['GET', '/proxy/echo/v1/%65cho/ping'],
    ];
    for (const [method, path] of refused) {
      const res = await through(path, token, { method });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(((await res.json()) as any).error.code, `${method} ${path}`).toBe('CS_PROXY_FORBIDDEN');
    }
    expect(kind.upstream.requests.length).toBe(before);
    expect((await through('/proxy/echo/v1/echo', token)).status).toBe(200);
    expect((await through('/proxy/echo/v1/echo/', token)).status).toBe(200);
    const head = await through('/proxy/echo/v1/echo/deep/er?x=1', token, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    // A write lease allows the write methods, on its own prefix.
    const write = await lease('https://echo/v1/items', 'write');
    const posted = await through('/proxy/echo/v1/items', write, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"n":1}',
    });
    expect(posted.status).toBe(200);
    expect(((await posted.json()) as any).bytes).toBe(7);
    expect((await through('/proxy/echo/v1/items', write)).status).toBe(403);
  });

  it('B3 only a proxy lease for this very upstream opens it: plain access tokens, other upstreams, forgeries and no token are refused', async () => {
    const echo = await lease();
    const plain = await h.requestAccess(agent, {
      action: 'read',
      resource: 'postgres://staging/app/orders',
      intent: { purpose: 'p', task_id: 'plain' },
    });
    const cases: Array<[string, string | undefined, string]> = [
      ['/proxy/echo/v1/x', plain.json.credential.access_token, 'CS_TOKEN_INVALID'],
      ['/proxy/echo-basic/v1/x', echo, 'CS_TOKEN_INVALID'],
      ['/proxy/echo/v1/x', `${echo.slice(0, -4)}AAAA`, 'CS_TOKEN_INVALID'],
      ['/proxy/echo/v1/x', await h.assertion(agent), 'CS_TOKEN_INVALID'],
      ['/proxy/echo/v1/x', undefined, 'CS_UNAUTHENTICATED'],
    ];
    for (const [path, token, code] of cases) {
      const res = await h.call('GET', path, token ? { token } : {});
      expect(res.status, `${path} ${code}`).toBe(401);
      expect(((await res.json()) as any).error.code).toBe(code);
    }
    expect((await h.call('GET', '/proxy/nowhere/x', { token: echo })).status).toBe(404);
    expect(kind.upstream.requests.length).toBe(0);
  });

  it('B8 a DPoP-bound proxy lease works only with a fresh proof of its key over this method and URL', async () => {
    const key = await newDpopKey();
    const other = await newDpopKey();
    const now = () => Math.floor(h.clock.now() / 1000);
    const assertion = await h.assertion(agent);
    const asked = await h.call('POST', '/v1/access-requests', {
      token: assertion,
      body: {
        action: 'read',
        resource: 'https://echo/v1',
        intent: { purpose: 'bound', task_id: 'dpop-proxy' },
      },
      headers: {
        dpop: await dpopProof(key, {
          method: 'POST',
          url: 'http://localhost:8787/v1/access-requests',
          iat: now(),
          accessToken: assertion,
        }),
      },
    });
    const answer = (await asked.json()) as any;
    expect(answer.status).toBe('allowed');
    expect(answer.credential).toMatchObject({ type: 'proxy', token_type: 'DPoP' });
    const token: string = answer.credential.access_token;
    expect(decodeJwt(token).cnf).toEqual({ jkt: key.jkt });
    const url = 'http://localhost:8787/proxy/echo/v1/x';
    const proof = (k = key, o: Partial<Parameters<typeof dpopProof>[1]> = {}) =>
      dpopProof(k, { method: 'GET', url, iat: now(), accessToken: token, ...o });
    const call = (headers: Record<string, string>) => h.call('GET', '/proxy/echo/v1/x', { headers });
    const refusals: Array<[string, Record<string, string>, string]> = [
      ['as a bearer token', { authorization: `Bearer ${token}` }, 'CS_DPOP_REQUIRED'],
      ['without a proof', { authorization: `DPoP ${token}` }, 'CS_DPOP_REQUIRED'],
      [
        'with a proof from another key',
        { authorization: `DPoP ${token}`, dpop: await proof(other) },
        'CS_DPOP_INVALID',
      ],
      [
        'with a proof for another URL',
        { authorization: `DPoP ${token}`, dpop: await proof(key, { url: `${url}/y` }) },
        'CS_DPOP_INVALID',
      ],
      [
        'with a proof for another method',
        { authorization: `DPoP ${token}`, dpop: await proof(key, { method: 'POST' }) },
        'CS_DPOP_INVALID',
      ],
      [
        'with a proof for another token',
        { authorization: `DPoP ${token}`, dpop: await proof(key, { accessToken: 'x.y.z' }) },
        'CS_DPOP_INVALID',
      ],
      [
        'with a stale proof',
        { authorization: `DPoP ${token}`, dpop: await proof(key, { iat: now() - 120 }) },
        'CS_DPOP_INVALID',
      ],
    ];
    for (const [what, headers, code] of refusals) {
      const res = await call(headers);
      expect(res.status, what).toBe(401);
      expect(((await res.json()) as any).error.code, what).toBe(code);
    }
    expect(kind.upstream.requests.length).toBe(0);
    const good = await proof();
    expect((await call({ authorization: `DPoP ${token}`, dpop: good })).status).toBe(200);
    // The same proof again: single use, whoever replays it.
    const replay = await call({ authorization: `DPoP ${token}`, dpop: good });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as any).error.code).toBe('CS_TOKEN_REPLAYED');
    expect(kind.upstream.requests.length).toBe(1);
    // An unbound lease is refused when dressed up as a DPoP one.
    const bearer = await lease();
    const dressed = await call({
      authorization: `DPoP ${bearer}`,
      dpop: await dpopProof(key, { method: 'GET', url, iat: now(), accessToken: bearer }),
    });
    expect(dressed.status).toBe(401);
    expect(((await dressed.json()) as any).error.code).toBe('CS_DPOP_REQUIRED');
  });

  it('redirects are never followed: inside the upstream they point back at the proxy, outside they are refused', async () => {
    const token = await lease();
    const inside = await through('/proxy/echo/v1/redirect-inside', token);
    expect(inside.status).toBe(302);
    expect(inside.headers.get('location')).toBe('http://localhost:8787/proxy/echo/v1/echo/moved?x=1');
    for (const path of ['/proxy/echo/v1/redirect-outside', '/proxy/echo/v1/redirect-above']) {
      const res = await through(path, token);
      expect(res.status, path).toBe(502);
      expect(((await res.json()) as any).error.code).toBe('CS_PROXY_UPSTREAM_FAILED');
    }
    // One upstream request per call: nothing was followed.
    expect(kind.upstream.requests.map((r) => r.url)).toEqual([
      '/base/v1/redirect-inside',
      '/base/v1/redirect-outside',
      '/base/v1/redirect-above',
    ]);
  });

  it('a request body over the upstream limit is refused before it is sent; a dead upstream is a 502', async () => {
    const write = await lease('https://echo/v1/items', 'write');
    const big = await through('/proxy/echo/v1/items', write, {
      method: 'POST',
      headers: { 'content-length': String(2 * 1024 * 1024) },
      body: 'x'.repeat(2 * 1024 * 1024),
    });
    expect(big.status).toBe(413);
    expect(kind.upstream.requests.length).toBe(0);
    await kind.upstream.close();
    const dead = await through('/proxy/echo/v1/x', await lease());
    expect(dead.status).toBe(502);
    expect(((await dead.json()) as any).error.code).toBe('CS_PROXY_UPSTREAM_FAILED');
  });

  it('bodies stream both ways over real sockets: nothing waits for a whole body', async () => {
    const port = await freePort();
    const http = serve({ fetch: h.server.app.fetch, port, hostname: '127.0.0.1' });
    await new Promise<void>((r) => http.once('listening', () => r()));
    try {
      const write = await lease('https://echo/v1/stream-up', 'write');
      // Upward: the upstream sees the first chunk while the agent still holds the rest back.
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/proxy/echo/v1/stream-up',
            headers: { authorization: `Bearer ${write}` },
          },
          (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on('error', reject);
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        req.write(chunk);
        const timer = setTimeout(
          () => reject(new Error('the first chunk never reached the upstream')),
          10_000,
        );
        kind.upstream.firstChunk.then(() => {
          clearTimeout(timer);
          for (let i = 0; i < 15; i++) req.write(chunk);
          req.end();
        });
      });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({
        bytes: 16 * 64 * 1024,
        sha256: sha('a'.repeat(16 * 64 * 1024)),
      });
      // Downward: the agent reads the first chunk while the upstream still holds the rest back.
      const read = await lease('https://echo/v1/stream-down');
      const chunks = await new Promise<string[]>((resolve, reject) => {
        const got: string[] = [];
        httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/proxy/echo/v1/stream-down',
            headers: { authorization: `Bearer ${read}` },
          },
          (res) => {
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              got.push(d);
              if (got.length === 1) kind.upstream.release();
            });
            res.on('end', () => resolve(got));
          },
        )
          .on('error', reject)
          .end();
      });
      expect(chunks[0]).toBe('first-chunk\n');
      expect(chunks.join('')).toBe('first-chunk\nlast-chunk\n');
    } finally {
      (http as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((r) => http.close(() => r()));
    }
  });
});
