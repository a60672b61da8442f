/**
 * Every answer carries `X-Content-Type-Options: nosniff` and, unless the route says it may be
 * cached (the JWKS) or streams (the console's SSE queue: `no-cache`), `Cache-Control: no-store`: decisions and credentials must never sit in a
 * shared cache (THREATS.md F-group, OWASP NHI2 secret leakage). Set once for the whole app;
 * checked here on success, refusal, error and not-found answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness, type TestAgent } from '../support/harness.js';

describe('response headers', () => {
  let h: Harness;
  let agent: TestAgent;
  beforeAll(async () => {
    h = await startHarness();
    agent = await h.addAgent('headers-bot', { owner: 'app' });
  });
  afterAll(async () => h?.close());

  const expectNoStore = (res: Response) => {
    expect(res.headers.get('cache-control'), res.url).toBe('no-store');
    expect(res.headers.get('x-content-type-options'), res.url).toBe('nosniff');
  };

  it('a credential, a denial, a refusal, an error and a 404 are all no-store and nosniff', async () => {
    const allowed = await h.call('POST', '/v1/access-requests', { agent, body: body() });
    expect(allowed.status).toBe(201);
    expect(((await allowed.clone().json()) as { credential?: unknown }).credential).toBeDefined();
    expectNoStore(allowed);
    const denied = await h.call('POST', '/v1/access-requests', {
      agent,
      body: body({ action: 'export', resource: 'secret://kms/prod-signing-key' }),
    });
    expect(denied.status).toBe(201);
    expectNoStore(denied);
    const unauthenticated = await h.call('POST', '/v1/access-requests', { body: body() });
    expect(unauthenticated.status).toBe(401);
    expectNoStore(unauthenticated);
    const badJson = await h.call('POST', '/v1/access-requests', { agent, rawBody: '{"action":' });
    expect(badJson.status).toBe(400);
    expectNoStore(badJson);
    const missing = await h.call('GET', '/v1/no-such-thing');
    expect(missing.status).toBe(404);
    expectNoStore(missing);
    const live = await h.call('GET', '/healthz/live');
    expect(live.status).toBe(200);
    expectNoStore(live);
  });

  it('the JWKS may be cached, and is still nosniff', async () => {
    const res = await h.call('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
