import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { countersignCount, openDb } from './support/db.js';
import { body, type Harness, startHarness } from './support/harness.js';

describe('fail closed (invariants 1 and 4, THREATS.md INV-9)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('I8 when the audit write fails, nothing is issued and nothing is recorded', async () => {
    h = await startHarness();
    const agent = await h.addAgent('bot');
    // A real fault in the real database: every audit insert now fails.
    const db = openDb(h.home);
    db.exec(
      "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    );
    db.close();
    const leasesBefore = countersignCount(h.home, 'leases');
    const { status, json } = await h.requestAccess(agent, body());
    expect(status).toBe(503);
    expect(json.error.code).toBe('CS_AUDIT_WRITE_FAILED');
    expect(JSON.stringify(json)).not.toContain('access_token');
    expect(countersignCount(h.home, 'leases')).toBe(leasesBefore);
    expect(countersignCount(h.home, 'access_requests')).toBe(0);
    // The fault clears: the next request goes through and the chain is intact.
    const db2 = openDb(h.home);
    db2.exec('DROP TRIGGER audit_down');
    db2.close();
    const retry = await h.requestAccess(agent, body());
    expect(retry.json.status).toBe('allowed');
    expect((await h.server.deps.ctx.store.read((tx) => tx.getLease(retry.json.lease_id)))?.status).toBe(
      'active',
    );
    const metrics = await (await h.call('GET', '/metrics')).text();
    expect(metrics).toMatch(/countersign_fail_closed_total\{code="CS_AUDIT_WRITE_FAILED"\} 1/);
  });

  it('I8 a failed lease write rolls back the decision and its audit events too', async () => {
    h = await startHarness();
    const agent = await h.addAgent('bot');
    const db = openDb(h.home);
    db.exec("CREATE TRIGGER lease_down BEFORE INSERT ON leases BEGIN SELECT RAISE(ABORT, 'no'); END");
    db.close();
    const { status } = await h.requestAccess(agent, body());
    expect(status).toBe(503);
    expect(countersignCount(h.home, 'access_requests')).toBe(0);
    const types: string[] = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) types.push(e.type);
    expect(types.filter((t) => t.startsWith('access_request.'))).toEqual([]);
  });

  it('J1 a policy set that does not parse at start: unready, and every request is denied with CS_POLICY_ERROR', async () => {
    h = await startHarness({
      configure: (home) =>
        writeFileSync(
          join(home, 'policies', 'broken.cedar'),
          'permit (principal, action, resource) when { ;',
        ),
    });
    const agent = await h.addAgent('bot');
    const health = await h.call('GET', '/healthz');
    expect(health.status).toBe(503);
    expect(((await health.json()) as any).status).toBe('unready');
    for (const b of [body(), body({ action: 'write', resource: 'postgres://prod/billing/invoices' })]) {
      const { status, json } = await h.requestAccess(agent, b);
      expect(status).toBe(201);
      expect(json.status).toBe('denied');
      expect(json.decision.error_code).toBe('CS_POLICY_ERROR');
      expect(json.credential).toBeUndefined();
    }
  });

  it('J1 an empty policy directory denies everything', async () => {
    h = await startHarness({
      configure: (home) => {
        // Every example file, whichever ship (mcp-tools.cedar joined them).
        for (const f of readdirSync(join(home, 'policies')).filter((n) => n.endsWith('.cedar'))) {
          writeFileSync(join(home, 'policies', f), '');
        }
      },
    });
    const agent = await h.addAgent('bot');
    const { json } = await h.requestAccess(agent, body());
    expect(json.status).toBe('denied');
    expect(json.decision.error_code).toBe('CS_POLICY_ERROR');
  });

  it('no permit matched: default deny without a fallback group, review with one', async () => {
    h = await startHarness();
    const agent = await h.addAgent('bot');
    // `other` actions have no permit in the example set.
    const denied = await h.requestAccess(agent, body({ action: 'frobnicate' }));
    expect(denied.json.status).toBe('denied');
    expect(denied.json.decision.reasons[0]).toMatch(/default deny/);
    await h.close();
    h = await startHarness({
      configure: (home) => {
        const file = join(home, 'countersign.yaml');
        const text = readFileSync(file, 'utf8');
        writeFileSync(file, text.replace('fallback_review_group: null', 'fallback_review_group: security'));
      },
    });
    const agent2 = await h.addAgent('bot');
    const reviewed = await h.requestAccess(agent2, body({ action: 'frobnicate' }));
    expect(reviewed.json.status).toBe('pending');
    expect(reviewed.json.review.reviewer_group).toBe('security');
  });

  it('a closed store answers 503 and issues nothing', async () => {
    h = await startHarness();
    const agent = await h.addAgent('bot');
    const token = await h.assertion(agent);
    await h.server.deps.ctx.store.close();
    const res = await h.call('POST', '/v1/access-requests', { token, body: body() });
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error.code).toBe('CS_STORE_UNAVAILABLE');
  });
});
