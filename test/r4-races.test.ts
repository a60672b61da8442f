/**
 * THREATS.md R4 (H3, H6, G4, A7, INV-3, INV-5): 500 access requests under review, 16
 * concurrent actors (submit, approve, deny, withdraw, complete the task, read and redeem) and
 * deadlines expiring under every instance's reaper, across 2 instances on one SQLite file and
 * 3 instances on one PostgreSQL database (READ COMMITTED). Approvals are real passkey
 * ceremonies through the console API (a test-only software authenticator; the server verifies
 * with SimpleWebAuthn as always). A history checker then requires: exactly one terminal state
 * per request, once; at most one lease and one delivered credential per request; quorums of
 * distinct people; no live lease for a completed task; every acknowledged ending kept; an
 * intact audit chain. EXTENDED=1 runs 5,000 requests with 32 actors.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CountersignServer } from '@countersign/server';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initHome } from '../packages/cli/src/commands/init.js';
import { createTestDatabase, type TestDatabase } from '../packages/store/test/support/pg-database.js';
import {
  enrollReviewers,
  type HttpAgent,
  type HttpReviewer,
  openLocal,
  registerAgents,
} from './support/http-actors.js';
import { type Instance, startInstance } from './support/instances.js';
import { check, type Db, runWorkload } from './support/r4.js';

const EXTENDED = process.env.EXTENDED === '1';
const TOTAL = EXTENDED ? 5000 : 500;
const ACTORS = EXTENDED ? 32 : 16;
const ISSUER = 'http://localhost:8787';

const SHORT_DEADLINE_POLICY = `@id("r4-short-deadline")
@reason("R4: deletes in production expire fast, so deadlines race approvals")
@review("platform-oncall")
@deadline("3s")
permit (principal, action == Countersign::Action::"delete", resource)
when { resource.catalogued && resource.environment == "production" };
`;

interface Setup {
  readonly dialect: 'sqlite' | 'postgres';
  readonly instances: number;
}

for (const setup of [
  { dialect: 'sqlite', instances: 2 },
  { dialect: 'postgres', instances: 3 },
] satisfies Setup[]) {
  describe(`R4 races on ${setup.instances} ${setup.dialect} instances`, () => {
    let home: string;
    let database: TestDatabase | null = null;
    let env: Record<string, string>;
    let instances: Instance[] = [];
    let db: Db;
    let close: () => Promise<void> = async () => undefined;
    let local: CountersignServer | null = null;
    let agents: HttpAgent[] = [];
    let reviewers: HttpReviewer[] = [];

    beforeAll(async () => {
      home = mkdtempSync(join(tmpdir(), `countersign-r4-${setup.dialect}-`));
      await initHome({ home, dev: true });
      writeFileSync(join(home, 'policies', 'zz-r4-short-deadline.cedar'), SHORT_DEADLINE_POLICY);
      writeFileSync(
        join(home, 'countersign.yaml'),
        // No pending cap: a handful of agents open hundreds of reviews here on purpose.
        `dev: true\nreaper_interval: 1s\nevents:\n  poll_interval: 1s\ncheckpoint:\n  max_pending_per_agent: null\n${
          // Small pools (the URL comes from DATABASE_URL): other suites share the server.
          setup.dialect === 'postgres' ? 'store:\n  postgres:\n    pool_max: 4\n' : ''
        }`,
      );
      if (setup.dialect === 'postgres') {
        database = await createTestDatabase();
        env = { DATABASE_URL: database.url };
        const client = new pg.Client({ connectionString: database.url });
        await client.connect();
        db = { all: async (sql, params = []) => (await client.query(sql, params)).rows };
        close = async () => {
          await client.end();
        };
      } else {
        env = { DATABASE_URL: '' };
      }
      // Set-up opens the store in this process first (migrating it), as the CLI would; then
      // every instance starts at once.
      local = await openLocal(home, env, ISSUER);
      agents = await registerAgents(
        local,
        ISSUER,
        ['r4-a', 'r4-b', 'r4-c', 'r4-d'].map((id) => ({ id, owner: 'app' })),
      );
      instances = await Promise.all(
        Array.from({ length: setup.instances }, (_, i) =>
          startInstance({ name: `i${i}`, home, issuer: ISSUER, env }),
        ),
      );
      reviewers = await enrollReviewers(
        local,
        instances[0]!.url,
        new URL(ISSUER).origin,
        ['r1', 'r2', 'r3', 'r4'].map((r) => ({
          email: `${r}@acme.dev`,
          groups: ['billing-oncall', 'platform-oncall'],
        })),
      );
      await local.close();
      local = null;
      if (setup.dialect === 'sqlite') {
        const file = new Database(join(home, 'countersign.db'), { readonly: true });
        file.pragma('busy_timeout = 5000');
        db = {
          all: async (sql, params = []) => file.prepare(sql.replace(/\$\d+/g, '?')).all(...params) as never,
        };
        close = async () => {
          file.close();
        };
      }
    }, 240_000);

    afterAll(async () => {
      try {
        await Promise.all(instances.map((i) => i.stop()));
        await local?.close();
        await close();
      } finally {
        rmSync(home, { recursive: true, force: true });
        await database?.drop();
      }
    });

    it(`R4 H3 H6 G4 ${TOTAL} requests, ${ACTORS} actors: one terminal state each, no duplicate lease, quorum of distinct people`, async () => {
      const urls = instances.map((i) => i.url);
      const seed = Number(process.env.R4_SEED ?? randomInt(2 ** 31));
      const { created, history, seconds } = await runWorkload({
        total: TOTAL,
        actors: ACTORS,
        seed,
        urls,
        agents,
        reviewers,
      });
      const verdict = await check(db, created, history);
      console.log(
        `[figure] R4 ${setup.dialect} x${setup.instances} (seed ${seed}): ${created.length} requests, ${history.length} operations in ${seconds.toFixed(1)} s (${(history.length / seconds).toFixed(0)} ops/s); violations ${verdict.violations.length}\n${JSON.stringify(verdict.figures, null, 1)}\n${verdict.violations.join('\n')}`,
      );
      expect(verdict.violations).toEqual([]);
      expect(created.length).toBe(TOTAL);
      // Failing closed (503, no effect) is allowed under load; any other 5xx is a defect.
      const failures = instances.flatMap((i) =>
        i
          .log()
          .split('\n')
          .filter((line) => line.includes('"msg":"request failed"'))
          .map((line) => JSON.parse(line).err as { code: string; cause?: string }),
      );
      const causes = new Map<string, number>();
      for (const f of failures)
        causes.set(`${f.code}: ${f.cause}`, (causes.get(`${f.code}: ${f.cause}`) ?? 0) + 1);
      if (causes.size > 0)
        console.log(`[figure] R4 ${setup.dialect} failed closed: ${JSON.stringify([...causes])}`);
      expect(
        failures.filter((f) => !['CS_STORE_UNAVAILABLE', 'CS_AUDIT_WRITE_FAILED'].includes(f.code)),
      ).toEqual([]);
    }, 900_000);
  });
}
