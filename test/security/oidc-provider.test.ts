/**
 * A real OpenID Provider (panva's `oidc-provider`) on loopback, issuing client-credentials
 * access tokens as RFC 9068 JWTs, configured as a trusted issuer found by OIDC discovery.
 * Midway its signing key is rotated (the provider restarts on the same port with a new key).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness } from '../support/harness.js';
import { appendConfig, registerWorkloadAgent } from '../support/workload-issuers.js';

const RESOURCE = 'https://countersign.test';
const SECRET = 'a-long-client-secret-for-the-test-provider-only';

let server: Server;
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.writeHead(503).end();
let issuer: string;
let h: Harness;
let kid = '';

async function startProvider(): Promise<void> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  kid = `op-${Math.random().toString(36).slice(2, 8)}`;
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'invoice-bot',
        client_secret: SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'agent',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  handler = provider.callback() as typeof handler;
}

async function clientCredentialsToken(resource = RESOURCE): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`invoice-bot:${SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'agent' }).toString(),
  });
  const json = (await res.json()) as { access_token?: string };
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json.access_token!;
}

function submit(token: string) {
  return h.call('POST', '/v1/access-requests', { token, body: body() });
}

beforeAll(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await startProvider();
  h = await startHarness({
    configure: (home) =>
      appendConfig(
        home,
        `identity:
  trusted_issuers:
    - issuer: ${issuer}
      kind: oidc
      discovery: true
      audience: ${RESOURCE}
      algorithms: [ES256]
      token_types: [at+jwt]
      jwks_cache: { max_age: 1s, cooldown: 1s, timeout: 2s }`,
      ),
  });
  await registerWorkloadAgent(h.server.deps.ctx, { id: 'invoice-bot', issuer, subject: 'invoice-bot' });
}, 60_000);

afterAll(async () => {
  await h?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe('oidc-provider as a trusted issuer', () => {
  it('B1 a client-credentials JWT access token (typ at+jwt) from the provider authenticates its bound agent', async () => {
    const token = await clientCredentialsToken();
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    expect(header.typ).toBe('at+jwt');
    // The harness clock is fixed in 2026: move it to the provider's (real) time.
    h.clock.ms = Date.now();
    const res = await submit(token);
    const text = await res.text();
    expect(res.status, text).toBe(201);
    expect(JSON.parse(text).status).toBe('allowed');
    // Reused for its lifetime: an OAuth access token is not one-time.
    expect((await submit(token)).status).toBe(201);
  });

  it('B3 a token the provider minted for another resource (aud) is 401', async () => {
    h.clock.ms = Date.now();
    const res = await submit(await clientCredentialsToken('https://vault.acme.test'));
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.code).toBe('CS_TOKEN_INVALID');
  });

  it('B2 a provider token past its exp (+ skew) is 401 CS_TOKEN_EXPIRED', async () => {
    const token = await clientCredentialsToken();
    h.clock.ms = Date.now() + 300_000 + 61_000;
    const res = await submit(token);
    expect(((await res.json()) as any).error.code).toBe('CS_TOKEN_EXPIRED');
  });

  it('B7 key rotation at the provider: new tokens verify after one refetch, tokens of the retired key stop after the cache age', async () => {
    h.clock.ms = Date.now();
    const old = await clientCredentialsToken();
    expect((await submit(old)).status).toBe(201);
    const oldKid = kid;
    await startProvider();
    expect(kid).not.toBe(oldKid);
    await new Promise((r) => setTimeout(r, 1100));
    h.clock.ms = Date.now();
    const fresh = await clientCredentialsToken();
    expect((await submit(fresh)).status).toBe(201);
    const res = await submit(old);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.code).toBe('CS_TOKEN_INVALID');
  });
});
