/**
 * THREATS.md E1 (OWASP Agentic T10, "overwhelming human in the loop"): one agent cannot flood
 * the reviewers' queue. The cap is checked inside the decision's unit of work, after the
 * agent's row is locked, so a concurrent flood leaves exactly `cap` pending on SQLite (group
 * commit, writer thread) and on PostgreSQL (parallel transactions on a pool).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../packages/store/test/support/pg-database.js';
import { body, type Harness, startHarness, type TestAgent } from './support/harness.js';

const CAP = 3;
const REVIEW = { action: 'write', resource: 'postgres://prod/billing/invoices' };

function withCap(home: string, postgresUrl: string | null): void {
  const file = join(home, 'countersign.yaml');
  let text = readFileSync(file, 'utf8').replace(
    /max_pending_per_agent: \d+/,
    `max_pending_per_agent: ${CAP}`,
  );
  if (postgresUrl)
    text = text.replace(
      /store:\n {2}sqlite:\n {4}file: countersign.db\n/,
      `store:\n  postgres:\n    url: ${postgresUrl}\n    pool_max: 8\n`,
    );
  writeFileSync(file, text);
}

async function auditTypes(h: Harness): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
  const out: Array<{ type: string; data: Record<string, unknown> }> = [];
  for await (const e of h.server.deps.ctx.store.auditEvents())
    out.push({ type: e.type, data: e.data as never });
  return out;
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`E1 per-agent cap on pending reviews (${dialect})`, () => {
    let h: Harness;
    let db: TestDatabase | null = null;
    let flooder: TestAgent;
    let neighbour: TestAgent;

    beforeAll(async () => {
      if (dialect === 'postgres') db = await createTestDatabase();
      h = await startHarness({
        configure: (home) => withCap(home, db?.url ?? null),
      });
      flooder = await h.addAgent('flooder', { owner: 'billing' });
      neighbour = await h.addAgent('neighbour', { owner: 'billing' });
    });
    afterAll(async () => {
      await h?.close();
      await db?.drop();
    });

    it('E1 beyond the cap a review request is refused with 429 CS_TOO_MANY_PENDING and audited', async () => {
      for (let i = 0; i < CAP; i++) {
        const r = await h.requestAccess(
          flooder,
          body({ ...REVIEW, intent: { purpose: 'p', task_id: `t${i}` } }),
        );
        expect(r.status).toBe(201);
        expect(r.json.status).toBe('pending');
      }
      const over = await h.requestAccess(
        flooder,
        body({ ...REVIEW, intent: { purpose: 'one more', task_id: 'tx' } }),
      );
      expect(over.status).toBe(429);
      expect(over.json.error.code).toBe('CS_TOO_MANY_PENDING');
      expect(over.json.error.details).toEqual({ pending: CAP, max_pending: CAP });

      const refused = (await auditTypes(h)).filter((e) => e.type === 'access_request.refused');
      expect(refused).toHaveLength(1);
      expect(refused[0]!.data).toMatchObject({
        code: 'CS_TOO_MANY_PENDING',
        agent_id: 'flooder',
        pending: CAP,
        max_pending: CAP,
        reviewer_group: 'billing-oncall',
      });
      const pending = await h.server.deps.ctx.store.read((tx) =>
        tx.countPendingRequests('flooder', h.clock.now()),
      );
      expect(pending).toBe(CAP);
    });

    it('E1 the cap counts reviews only: the same agent still gets allows and denies at once, others still get reviews', async () => {
      const allow = await h.requestAccess(flooder, body());
      expect(allow.status).toBe(201);
      expect(allow.json.status).toBe('allowed');
      const deny = await h.requestAccess(flooder, body({ action: 'export', resource: 'secret://kms/k' }));
      expect(deny.json.status).toBe('denied');
      const other = await h.requestAccess(neighbour, body(REVIEW));
      expect(other.json.status).toBe('pending');
    });

    it('E1 a withdrawn review frees a place under the cap; an expired one no longer counts', async () => {
      const [first] = await h.server.deps.ctx.store.read((tx) =>
        tx.listPendingRequests({ agentId: 'flooder' }, 10),
      );
      const withdrawn = await h.call('POST', `/v1/access-requests/${first!.id}/withdraw`, { agent: flooder });
      expect(withdrawn.status).toBe(200);
      const again = await h.requestAccess(flooder, body(REVIEW));
      expect(again.json.status).toBe('pending');
      expect((await h.requestAccess(flooder, body(REVIEW))).status).toBe(429);
      // Past every deadline (15 minutes by default), the old reviews read as expired.
      h.clock.advance(16 * 60);
      const later = await h.requestAccess(flooder, body(REVIEW));
      expect(later.json.status).toBe('pending');
    });

    it('E1 R11 a concurrent flood of 40 review requests leaves exactly the cap pending, the rest 429 and audited', async () => {
      const agent = await h.addAgent('burst', { owner: 'billing' });
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          h.requestAccess(agent, body({ ...REVIEW, intent: { purpose: 'flood', task_id: `f${i}` } })),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(CAP);
      expect(statuses.filter((s) => s === 429)).toHaveLength(40 - CAP);
      for (const r of results) if (r.status === 429) expect(r.json.error.code).toBe('CS_TOO_MANY_PENDING');
      const pending = await h.server.deps.ctx.store.read((tx) =>
        tx.countPendingRequests('burst', h.clock.now()),
      );
      expect(pending).toBe(CAP);
      const refused = (await auditTypes(h)).filter(
        (e) => e.type === 'access_request.refused' && e.data.agent_id === 'burst',
      );
      expect(refused).toHaveLength(40 - CAP);
      // Every refusal saw the cap full: none was counted against a stale snapshot.
      for (const e of refused) expect(e.data.pending).toBe(CAP);
    });
  });
}
