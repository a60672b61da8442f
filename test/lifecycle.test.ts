import { suspendAgent } from '@countersign/core';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countersignCount } from './support/db.js';
import { body, type Harness, startHarness, type TestAgent } from './support/harness.js';

async function introspect(h: Harness, agent: TestAgent, token: string) {
  const res = await h.call('POST', '/oauth/introspect', {
    agent,
    rawBody: new URLSearchParams({ token }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

describe('leases, tasks, reviews and the agent lifecycle', () => {
  let h: Harness;
  let agent: TestAgent;
  beforeEach(async () => {
    h = await startHarness();
    agent = await h.addAgent('spiffe://acme.dev/agent/invoice-bot', { owner: 'billing' });
  });
  afterEach(async () => h.close());

  it('issues an RFC 9068 access token bound to exactly the request, verifiable with the JWKS', async () => {
    const { json } = await h.requestAccess(agent, body({ ttl_seconds: 3600 }));
    const token: string = json.credential.access_token;
    const jwks = (await (await h.call('GET', '/.well-known/jwks.json')).json()) as { keys: any[] };
    expect(jwks.keys[0]).not.toHaveProperty('d');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
      typ: 'at+jwt',
      issuer: 'http://localhost:8787',
      audience: 'postgres://staging/app',
      currentDate: new Date(h.clock.now()),
    });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.sub).toBe(agent.id);
    expect(payload.task_id).toBe('task-1');
    expect(payload.request_digest).toBe(json.decision.request_digest);
    expect(payload.authorization_details).toEqual([
      { type: 'countersign_access', actions: ['read'], locations: ['postgres://staging/app/orders'] },
    ]);
    // The read-internal policy caps the TTL at 15 minutes whatever the agent asked for (INV-5).
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(decodeProtectedHeader(token).kid).toBe(jwks.keys[0].kid);
  });

  it('C1 completing the task revokes its leases: introspection turns inactive and the task takes no new requests', async () => {
    const { json } = await h.requestAccess(agent, body());
    const token: string = json.credential.access_token;
    expect((await introspect(h, agent, token)).active).toBe(true);
    const done = await h.call('POST', '/v1/tasks/task-1/complete', { agent });
    expect(done.status).toBe(200);
    expect(((await done.json()) as any).revoked_leases).toEqual([json.lease_id]);
    expect((await introspect(h, agent, token)).active).toBe(false);
    const again = await h.requestAccess(agent, body());
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('CS_TASK_COMPLETED');
  });

  it('C1 a lease is inactive once its TTL passes, with no sweeper involved', async () => {
    const { json } = await h.requestAccess(agent, body({ ttl_seconds: 60 }));
    expect((await introspect(h, agent, json.credential.access_token)).active).toBe(true);
    h.clock.advance(61);
    expect((await introspect(h, agent, json.credential.access_token)).active).toBe(false);
  });

  it('an agent may introspect only its own leases; a configured resource server may introspect any', async () => {
    const other = await h.addAgent('other-bot');
    const { json } = await h.requestAccess(agent, body());
    expect((await introspect(h, other, json.credential.access_token)).active).toBe(false);
    const res = await h.call('POST', '/oauth/introspect', {
      rawBody: new URLSearchParams({ token: json.credential.access_token }).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('nobody:wrong').toString('base64')}`,
      },
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error).toBe('invalid_client');
  });

  it('RFC 7009 revocation by the owning agent ends the lease and is audited', async () => {
    const { json } = await h.requestAccess(agent, body());
    const token: string = json.credential.access_token;
    const res = await h.call('POST', '/oauth/revoke', {
      agent,
      rawBody: new URLSearchParams({ token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    expect((await introspect(h, agent, token)).active).toBe(false);
    const types: string[] = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) types.push(e.type);
    expect(types).toContain('lease.revoked');
  });

  it('E3 same Idempotency-Key and body gives the same request; another body gives 422', async () => {
    const headers = { 'idempotency-key': 'k-1' };
    const first = await h.requestAccess(agent, body(), headers);
    const second = await h.requestAccess(agent, body(), headers);
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.json.id).toBe(first.json.id);
    expect(second.json.credential).toBeUndefined(); // a credential is handed out once, never replayed
    const changed = await h.requestAccess(agent, body({ action: 'write' }), headers);
    expect(changed.status).toBe(422);
    expect(changed.json.error.code).toBe('CS_IDEMPOTENCY_MISMATCH');
  });

  it('E3 50 concurrent identical submits with one key make exactly one request and one lease', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, () => h.requestAccess(agent, body(), { 'idempotency-key': 'burst' })),
    );
    const ids = new Set(results.map((r) => r.json.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.json.credential)).toHaveLength(1);
    expect(countersignCount(h.home, 'leases')).toBe(1);
    expect(countersignCount(h.home, 'access_requests')).toBe(1);
  });

  it('A11 R9 a pending review past its deadline reads as expired (a deny) without any sweeper', async () => {
    const { json } = await h.requestAccess(
      agent,
      body({ action: 'write', resource: 'postgres://prod/billing/invoices' }),
    );
    expect(json.status).toBe('pending');
    h.clock.advance(15 * 60 + 1);
    const res = await h.call('GET', `/v1/access-requests/${json.id}`, { agent });
    const read = (await res.json()) as any;
    expect(read.status).toBe('expired');
    expect(read.credential).toBeUndefined();
  });

  it('a long-polling agent wakes at once when its request changes', async () => {
    const { json } = await h.requestAccess(
      agent,
      body({ action: 'write', resource: 'postgres://prod/billing/invoices' }),
    );
    const started = performance.now();
    const waiting = h.call('GET', `/v1/access-requests/${json.id}?wait=20`, { agent });
    await new Promise((r) => setTimeout(r, 100));
    const withdrawn = await h.call('POST', `/v1/access-requests/${json.id}/withdraw`, { agent });
    expect(withdrawn.status).toBe(200);
    const read = (await (await waiting).json()) as any;
    expect(read.status).toBe('withdrawn');
    expect(performance.now() - started).toBeLessThan(5000);
    const twice = await h.call('POST', `/v1/access-requests/${json.id}/withdraw`, { agent });
    expect(twice.status).toBe(409);
    expect(((await twice.json()) as any).error.code).toBe('CS_REQUEST_CLOSED');
  });

  it('E6 ?wait= takes decimal seconds 0..60 only', async () => {
    const { json } = await h.requestAccess(agent, body());
    for (const wait of ['0x10', '1e1', '', '61', '-1', ' 5']) {
      const res = await h.call('GET', `/v1/access-requests/${json.id}?wait=${encodeURIComponent(wait)}`, {
        agent,
      });
      expect(res.status, JSON.stringify(wait)).toBe(400);
      expect(((await res.json()) as any).error.code).toBe('CS_INVALID_REQUEST');
    }
    const ok = await h.call('GET', `/v1/access-requests/${json.id}?wait=0`, { agent });
    expect(ok.status).toBe(200);
  });

  it('only the requesting agent can read a request', async () => {
    const other = await h.addAgent('other-bot');
    const { json } = await h.requestAccess(agent, body());
    const res = await h.call('GET', `/v1/access-requests/${json.id}`, { agent: other });
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe('CS_NOT_FOUND');
  });

  it('B12 suspending an agent revokes its leases, cancels its pending reviews and refuses its tokens', async () => {
    const allowed = await h.requestAccess(agent, body());
    const pending = await h.requestAccess(
      agent,
      body({ action: 'write', resource: 'postgres://prod/billing/invoices' }),
    );
    const token = await h.assertion(agent);
    const result = await suspendAgent({
      ctx: h.server.deps.ctx,
      actor: { type: 'operator', id: 'test' },
      input: { agentId: agent.id },
    });
    expect(result).toEqual({ revokedLeases: 1, cancelledRequests: 1, pendingRevocations: [] });
    const refused = await h.call('POST', '/v1/access-requests', { token, body: body() });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as any).error.code).toBe('CS_AGENT_SUSPENDED');
    const rs = await h.server.deps.ctx.store.read((tx) => tx.getRequest(pending.json.id));
    expect(rs?.status).toBe('cancelled');
    const lease = await h.server.deps.ctx.store.read((tx) => tx.getLease(allowed.json.lease_id));
    expect(lease?.status).toBe('revoked');
  });
});
