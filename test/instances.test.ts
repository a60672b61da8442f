/**
 * Several instances behave as one: three real `countersign serve` processes on one PostgreSQL
 * database (a database of its own for this run), sharing one data directory's config,
 * policies and signing key, as they would behind a load balancer. Prints its figures.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initHome } from '../packages/cli/src/commands/init.js';
import {
  ADMIN_URL,
  createTestDatabase,
  type TestDatabase,
} from '../packages/store/test/support/pg-database.js';
import {
  enrollReviewers,
  type HttpAgent,
  type HttpReviewer,
  openLocal,
  registerAgents,
} from './support/http-actors.js';
import { cliAsync, freePort, type Instance, startInstance } from './support/instances.js';

const ISSUER = 'http://localhost:8787';
const PROD_WRITE = {
  action: 'write',
  resource: 'postgres://prod/billing/invoices',
  intent: { purpose: 'apply the credit note', task_id: 'inst-review' },
};
const STAGING_READ = {
  action: 'read',
  resource: 'postgres://staging/app/orders',
  intent: { purpose: 'weekly report', task_id: 'inst-read' },
};

function stats(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), max: sorted[sorted.length - 1]! };
}
const fmt = (s: ReturnType<typeof stats>) =>
  `n=${s.n} p50=${s.p50.toFixed(0)} ms p90=${s.p90.toFixed(0)} ms max=${s.max.toFixed(0)} ms`;

describe('several instances on one PostgreSQL database', () => {
  let db: TestDatabase;
  let home: string;
  let env: Record<string, string>;
  let instances: Instance[] = [];
  let agent: HttpAgent;
  let reviewers: HttpReviewer[];
  let hooks: Server;
  const deliveries: Array<{ id: string; type: string; request: string }> = [];
  const [A, B, C] = [0, 1, 2];
  const url = (i: number) => instances[i]!.url;

  async function query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    env = { DATABASE_URL: db.url };
    home = mkdtempSync(join(tmpdir(), 'countersign-instances-'));
    await initHome({ home, dev: true });
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const payload = JSON.parse(body);
        deliveries.push({
          id: String(req.headers['webhook-id']),
          type: payload.type,
          request: payload.data.request_id,
        });
        res.writeHead(204).end();
      });
    });
    const hookPort = await freePort();
    await new Promise<void>((ok) => hooks.listen(hookPort, '127.0.0.1', ok));
    // Short deadlines for one kind of request, so the reapers have work (strictest wins).
    writeFileSync(
      join(home, 'policies', 'zz-short-deadline.cedar'),
      `@id("short-deadline-delete")
@reason("test: deletes in production expire fast")
@review("platform-oncall")
@deadline("3s")
permit (principal, action == Countersign::Action::"delete", resource)
when { resource.catalogued && resource.environment == "production" };
`,
    );
    writeFileSync(
      join(home, 'countersign.yaml'),
      `dev: true
store:
  postgres:
    pool_max: 4             # the URL comes from DATABASE_URL; small pools: tests share the server
reaper_interval: 1s
events:
  poll_interval: 1s
notifications:
  webhooks:
    - name: test-hook
      url: http://127.0.0.1:${hookPort}/hook
      secret: whsec_${randomBytes(24).toString('base64')}
`,
    );
    // Instances starting together migrate one at a time (an advisory lock); set-up opens the
    // store in this process, as the CLI would.
    const local = await openLocal(home, env, ISSUER);
    try {
      agent = (await registerAgents(local, ISSUER, [{ id: 'fleet-bot', owner: 'app' }]))[0]!;
      instances = await Promise.all(
        ['A', 'B', 'C'].map((name) => startInstance({ name, home, issuer: ISSUER, env })),
      );
      reviewers = await enrollReviewers(local, url(A), new URL(ISSUER).origin, [
        { email: 'pat@acme.dev', groups: ['billing-oncall', 'platform-oncall'] },
        { email: 'quinn@acme.dev', groups: ['billing-oncall', 'platform-oncall'] },
      ]);
    } finally {
      await local.close();
    }
  }, 180_000);

  afterAll(async () => {
    try {
      await Promise.all(instances.map((i) => i.stop()));
      await new Promise<void>((ok) => hooks?.close(() => ok()));
    } finally {
      rmSync(home, { recursive: true, force: true });
      await db.drop();
    }
  });

  it('C2 a review decided on instance B wakes the agent long-polling on instance A (latency printed)', async () => {
    // Denials measure the wake-up itself; approvals also include delivering the credential
    // (a signature and a unit of work with its audit event) before A answers.
    const woke: Record<'approve' | 'deny', number[]> = { approve: [], deny: [] };
    for (let i = 0; i < 12; i++) {
      const verdict = i % 3 === 0 ? 'approve' : 'deny';
      const pending = await agent.call(url(A), 'POST', '/v1/access-requests', PROD_WRITE);
      expect(pending.body.status).toBe('pending');
      const poll = agent
        .call(url(A), 'GET', `/v1/access-requests/${pending.body.id}?wait=30`)
        .then((r) => ({ r, at: performance.now() }));
      await new Promise((r) => setTimeout(r, 150));
      const decided = await reviewers[i % 2]!.decide(url(B), pending.body.id, verdict);
      const decidedAt = performance.now();
      expect(decided.body.status).toBe(verdict === 'approve' ? 'allowed' : 'denied');
      const { r, at } = await poll;
      expect(r.body.status).toBe(decided.body.status);
      // The long poll's first read carries the credential: delivered once, on A.
      if (verdict === 'approve') expect(r.body.credential?.access_token).toEqual(expect.any(String));
      woke[verdict].push(Math.max(0, at - decidedAt));
    }
    const deny = stats(woke.deny);
    console.log(`[figure] C2 wake-up on A after a decision on B (LISTEN/NOTIFY): ${fmt(deny)}`);
    console.log(`[figure] C2 same, for approvals, credential delivery included: ${fmt(stats(woke.approve))}`);
    expect(deny.p50).toBeLessThan(100);
    expect(deny.max).toBeLessThan(1000);
  });

  it('C2 with its notification connection killed over and over, A still wakes by polling the audit chain', async () => {
    const pending = await agent.call(url(A), 'POST', '/v1/access-requests', PROD_WRITE);
    const poll = agent
      .call(url(A), 'GET', `/v1/access-requests/${pending.body.id}?wait=30`)
      .then((r) => ({ r, at: performance.now() }));
    let killing = true;
    const killer = (async () => {
      while (killing) {
        await query(
          "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'countersign-listen'",
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const decided = await reviewers[0]!.decide(url(B), pending.body.id, 'approve');
      const approvedAt = performance.now();
      expect(decided.body.status).toBe('allowed');
      const { r, at } = await poll;
      expect(r.body.status).toBe('allowed');
      console.log(
        `[figure] C2 wake-up on A with notifications being killed: ${(at - approvedAt).toFixed(0)} ms`,
      );
      // One poll interval (1 s), plus the read.
      expect(at - approvedAt).toBeLessThan(2000);
    } finally {
      killing = false;
      await killer;
    }
    // And the listeners come back.
    for (const i of [A, B, C]) {
      await expect
        .poll(async () => ((await (await fetch(`${url(i)}/healthz`)).json()) as any).checks.events, {
          timeout: 15_000,
        })
        .toMatch(/^listening/);
    }
  });

  it('consoles on every instance update live: a review opened on A and decided on C reaches the streams of A, B and C', async () => {
    const controller = new AbortController();
    const seen: Array<Array<{ request_id: string; status: string; at: number }>> = [[], [], []];
    const streams = [A, B, C].map((i) =>
      reviewers[1]!.events(
        url(i),
        (event, data) => {
          if (event === 'review')
            seen[i]!.push({ ...(data as { request_id: string; status: string }), at: performance.now() });
        },
        controller.signal,
      ),
    );
    try {
      await new Promise((r) => setTimeout(r, 500));
      const opened = performance.now();
      const pending = await agent.call(url(A), 'POST', '/v1/access-requests', PROD_WRITE);
      const id = pending.body.id as string;
      const has = (i: number, status: string) =>
        seen[i]!.find((e) => e.request_id === id && e.status === status);
      await expect.poll(() => [A, B, C].every((i) => has(i, 'pending')), { timeout: 3000 }).toBe(true);
      const decided = await reviewers[1]!.decide(url(C), id, 'deny');
      const deniedAt = performance.now();
      expect(decided.body.status).toBe('denied');
      await expect.poll(() => [A, B, C].every((i) => has(i, 'denied')), { timeout: 3000 }).toBe(true);
      console.log(
        `[figure] console streams: opened on A seen on A/B/C after ${[A, B, C].map((i) => (has(i, 'pending')!.at - opened).toFixed(0)).join('/')} ms; denied on C seen after ${[A, B, C].map((i) => Math.max(0, has(i, 'denied')!.at - deniedAt).toFixed(0)).join('/')} ms`,
      );
    } finally {
      controller.abort();
      await Promise.allSettled(streams);
    }
  });

  it('C2 INV-8 R10 a lease revoked on A is inactive for introspection on B and C within one second (figures printed)', async () => {
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const granted = await agent.call(url(A), 'POST', '/v1/access-requests', STAGING_READ);
      expect(granted.body.status).toBe('allowed');
      const token = granted.body.credential.access_token as string;
      for (const at of [B, C]) expect((await agent.introspect(url(at), token)).body.active).toBe(true);
      const res = await fetch(`${url(A)}/oauth/revoke`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await agent.assertion()}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token }).toString(),
      });
      expect(res.status).toBe(200);
      const revokedAt = performance.now();
      await Promise.all(
        [B, C].map(async (at) => {
          for (;;) {
            const r = await agent.introspect(url(at), token);
            if (r.body.active === false) {
              delays.push(performance.now() - revokedAt);
              return;
            }
            await new Promise((ok) => setTimeout(ok, 20));
          }
        }),
      );
    }
    const s = stats(delays);
    console.log(`[figure] C2 revocation on A seen by introspection on B and C: ${fmt(s)}`);
    expect(s.max).toBeLessThan(1000);
  });

  it('H2 the review reaper and webhook delivery do each item once across three instances', async () => {
    const before = deliveries.length;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await agent.call(url(i % 3), 'POST', '/v1/access-requests', {
        action: 'delete',
        resource: `postgres://prod/app/tmp-${i}`,
        intent: { purpose: 'drop a scratch table', task_id: `reap-${i}` },
      });
      expect(r.body.status).toBe('pending');
      expect(r.body.decision.obligations.deadline_seconds).toBe(3);
      ids.push(r.body.id);
    }
    // Deadline 3 s, reapers every second on each instance: nobody reads these requests.
    await expect
      .poll(
        async () =>
          (
            await query<{ n: string }>(
              "select count(*) as n from access_requests where id = any($1) and status = 'expired'",
              [ids],
            )
          )[0]!.n,
        { timeout: 15_000, interval: 250 },
      )
      .toBe('6');
    const expired = await query<{ request_id: string; n: string }>(
      "select request_id, count(*) as n from audit_events where type = 'review.expired' and request_id = any($1) group by request_id",
      [ids],
    );
    expect(expired).toHaveLength(6);
    expect(expired.every((r) => r.n === '1')).toBe(true);
    // Each request: review.requested then review.decided, each delivered once (one webhook-id each).
    await expect
      .poll(() => deliveries.slice(before).filter((d) => ids.includes(d.request)).length, { timeout: 15_000 })
      .toBe(12);
    await new Promise((r) => setTimeout(r, 2500)); // time for any duplicate to show up
    const mine = deliveries.slice(before).filter((d) => ids.includes(d.request));
    expect(mine).toHaveLength(12);
    expect(new Set(mine.map((d) => d.id)).size).toBe(12);
    for (const id of ids) {
      expect(
        mine
          .filter((d) => d.request === id)
          .map((d) => d.type)
          .sort(),
      ).toEqual(['review.decided', 'review.requested']);
    }
    const delivered = await query<{ n: string }>(
      "select count(*) as n from audit_events where type = 'notification.delivered' and request_id = any($1)",
      [ids],
    );
    expect(delivered[0]!.n).toBe('12');
    console.log('[figure] H2 3 instances: 6 reviews expired once each, 12 webhooks delivered once each');
  });

  it('A1 one agent assertion sent to three instances at once is accepted by exactly one', async () => {
    const token = await agent.assertion();
    const answers = await Promise.all(
      [A, B, C].map((i) => agent.call(url(i), 'POST', '/v1/access-requests', STAGING_READ, token)),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 401, 401]);
    for (const a of answers.filter((x) => x.status === 401))
      expect(a.body.error.code).toBe('CS_TOKEN_REPLAYED');
  });

  it('R6 a database gone read-only: writes fail closed everywhere, /healthz and /metrics say why, and all recover', async () => {
    const admin = async (text: string) => {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(text);
      } finally {
        await client.end();
      }
    };
    const setReadOnly = (on: boolean) =>
      admin(
        `alter database ${pg.escapeIdentifier(db.name)} set default_transaction_read_only = ${on ? 'on' : 'off'}`,
      );
    const before = await query<{ n: string }>('select count(*) as n from access_requests');
    await setReadOnly(true);
    try {
      // Pooled sessions keep the default they started with: end them, as a failover would.
      await query(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'countersign' and pid <> pg_backend_pid()",
      );
      for (const i of [A, B, C]) {
        // Whatever the unit meets first (a terminated session or a read-only one), a 503.
        const answer = await agent.call(url(i), 'POST', '/v1/access-requests', STAGING_READ);
        expect(answer.status).toBe(503);
        expect(answer.body.error.code).toBe('CS_STORE_UNAVAILABLE');
        // /healthz re-tries a harmless write, so it names the current reason.
        const health = await fetch(`${url(i)}/healthz`);
        expect(health.status).toBe(503);
        expect(((await health.json()) as any).checks.store).toMatch(
          /writes failing since .*read-only transaction/,
        );
        const metrics = await (await fetch(`${url(i)}/metrics`)).text();
        expect(metrics).toMatch(/countersign_store_write_failing 1/);
        expect(metrics).toMatch(/countersign_fail_closed_total\{code="CS_STORE_UNAVAILABLE"\} [1-9]/);
      }
      expect(await query('select count(*) as n from access_requests')).toEqual(before);
    } finally {
      await setReadOnly(false);
    }
    const cleared = performance.now();
    const recovered: number[] = [];
    for (const i of [A, B, C]) {
      await expect
        .poll(async () => (await fetch(`${url(i)}/healthz`)).status, { timeout: 10_000, interval: 100 })
        .toBe(200);
      recovered.push(performance.now() - cleared);
    }
    console.log(
      `[figure] R6 read-only database: instances ready again ${recovered.map((ms) => ms.toFixed(0)).join('/')} ms after it was writable`,
    );
    expect((await agent.call(url(B), 'POST', '/v1/access-requests', STAGING_READ)).status).toBe(201);
  });

  it('I3 after all of this the audit chain is one linear chain that verifies', async () => {
    const r = await cliAsync(home, ['audit', 'verify'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [row] = await query<{ n: string; max: string }>(
      'select count(*) as n, max(seq) as max from audit_events',
    );
    const { n, max } = row!;
    expect(n).toBe(max);
    expect(r.stdout).toContain(`audit chain intact: ${n} events`);
  });
});
