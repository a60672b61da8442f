/**
 * `POST /v1/access-requests/forbidden`: which (action, resource) pairs policy forbids outright,
 * for the MCP gateway's `hide_forbidden`. Only an explicit forbid counts (not a default deny,
 * not a bad name); every answer costs the agent a one-time assertion and one audit event, so
 * policy cannot be probed unseen; nothing is recorded as a request and nothing is issued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, type TestAgent } from './support/harness.js';

const PATH = '/v1/access-requests/forbidden';

async function events(h: Harness, type: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for await (const e of h.server.deps.ctx.store.auditEvents())
    if (e.type === type) out.push({ ...e.data, actor: e.actor });
  return out;
}

async function auditCount(h: Harness): Promise<number> {
  let n = 0;
  for await (const _e of h.server.deps.ctx.store.auditEvents()) n++;
  return n;
}

describe('policy visibility checks (tools/list hide_forbidden)', () => {
  let h: Harness;
  let agent: TestAgent;

  beforeAll(async () => {
    h = await startHarness();
    agent = await h.addAgent('lister', { owner: 'platform' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('reports a forbid as forbidden, a default deny, an allow and a review as not, a bad name as invalid', async () => {
    const before = await auditCount(h);
    const res = await h.call('POST', PATH, {
      agent,
      body: {
        checks: [
          // forbid-repository-deletion
          { action: 'mcp:github:delete_repository', resource: 'github://acme/payments' },
          // no permit matches: default deny, not "forbidden outright"
          { action: 'mcp:nowhere:do_thing', resource: 'mcp://nowhere/do_thing' },
          // read-internal: allowed
          { action: 'mcp:docs:search', resource: 'mcp://docs/search' },
          // a production write: review
          { action: 'mcp:github:create_pull_request', resource: 'github://acme/payments@main' },
          // outside the action grammar
          { action: 'Not An Action', resource: 'mcp://docs/search' },
          // outside the resource grammar
          { action: 'mcp:docs:search', resource: 'no scheme here' },
        ],
      },
    });
    expect(res.status).toBe(200);
    const json = (await res.json()) as any;
    expect(json.forbidden).toEqual([true, false, false, false, false, false]);
    expect(json.invalid.map((i: { index: number; code: string }) => [i.index, i.code])).toEqual([
      [4, 'CS_INVALID_IDENTIFIER'],
      [5, 'CS_INVALID_RESOURCE'],
    ]);
    expect(json.policy_version).toBe(h.server.deps.ctx.policy().version);

    // Exactly one audit event for the call, and no request recorded.
    expect(await auditCount(h)).toBe(before + 1);
    const checked = await events(h, 'policy.visibility_checked');
    expect(checked.at(-1)).toEqual({
      agent_id: 'lister',
      checks: 6,
      forbidden: 1,
      invalid: 2,
      policy_version: json.policy_version,
      actor: { type: 'agent', id: 'lister' },
    });
    const requests = await h.server.deps.ctx.store.read((tx) => tx.listRequestsSince(0, 10));
    expect(requests).toHaveLength(0);
  });

  it('B8 a replayed assertion is refused with 401 and answers nothing, and records no second event', async () => {
    const token = await h.assertion(agent);
    const checks = [{ action: 'mcp:github:delete_repository', resource: 'github://acme/payments' }];
    const first = await h.call('POST', PATH, { token, body: { checks } });
    expect(first.status).toBe(200);
    const count = await auditCount(h);
    const again = await h.call('POST', PATH, { token, body: { checks } });
    expect(again.status).toBe(401);
    const json = (await again.json()) as any;
    expect(json.error.code).toBe('CS_TOKEN_REPLAYED');
    expect(json.forbidden).toBeUndefined();
    expect(await auditCount(h)).toBe(count);
  });

  it('refuses an unauthenticated call with 401', async () => {
    const res = await h.call('POST', PATH, { body: { checks: [] } });
    expect(res.status).toBe(401);
  });

  it('D4 E4 refuses more than 256 checks with 400 CS_TOO_MANY_CHECKS, and a malformed body with CS_INVALID_REQUEST', async () => {
    const count = await auditCount(h);
    const many = Array.from({ length: 257 }, (_v, i) => ({
      action: 'mcp:docs:search',
      resource: `mcp://docs/t${i}`,
    }));
    const over = await h.call('POST', PATH, { agent, body: { checks: many } });
    expect(over.status).toBe(400);
    expect(((await over.json()) as any).error.code).toBe('CS_TOO_MANY_CHECKS');
    const at = await h.call('POST', PATH, { agent, body: { checks: many.slice(0, 256) } });
    expect(at.status).toBe(200);
    expect(((await at.json()) as any).forbidden).toHaveLength(256);
    const bad = await h.call('POST', PATH, { agent, body: { checks: [{ action: 'x' }] } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.code).toBe('CS_INVALID_REQUEST');
    const extra = await h.call('POST', PATH, { agent, body: { checks: [], context: {} } });
    expect(extra.status).toBe(400);
    // Only the answered call was audited.
    expect(await auditCount(h)).toBe(count + 1);
  });
});
