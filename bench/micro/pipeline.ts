/**
 * Micro-benchmark: what one decision costs on one core, piece by piece, with the product's
 * own functions and the example policies, then the whole decision in-process through
 * `app.request()` (Hono without a socket) on a real SQLite file (synchronous=FULL).
 * The per-piece figures are what the budget in bench/README.md adds up.
 *
 *   node --import tsx bench/micro/pipeline.ts [allow|deny|review]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assessRisk,
  buildPolicyInput,
  canonicalJson,
  chainEvent,
  classifyAction,
  DEFAULT_RISK_SETTINGS,
  decide,
  type PolicyInput,
  parseActionName,
  parseResource,
  ResourceCatalog,
  requestDigest,
  sha256Hex,
} from '@countersign/core';
import { policyEngineFromDirectory } from '@countersign/policy';
import { AccessRequestBodySchema } from '@countersign/protocol';
import { createServer, loadCatalogFile, loadConfig, parseJsonBody } from '@countersign/server';
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import { Histogram, Registry } from 'prom-client';
import { initHome } from '../../packages/cli/src/commands/init.ts';
import { AssertionPool, registerBenchAgent } from '../lib/assertions.js';
import { disablePendingCap } from '../lib/server.ts';
import { report, type Timing, time } from './lib.js';

const which = (process.argv[2] ?? 'allow') as 'allow' | 'deny' | 'review';
const intent = { purpose: 'bench', task_id: 't1' };
const BODIES = {
  allow: { action: 'read', resource: 'postgres://staging/app/orders', intent },
  deny: { action: 'export', resource: 'secret://kms/prod-signing-key', intent },
  review: { action: 'write', resource: 'postgres://prod/billing/invoices', intent },
};
const body = BODIES[which];
const bodyText = JSON.stringify(body);
const bodyBytes = new TextEncoder().encode(bodyText);

const home = mkdtempSync(join(tmpdir(), 'countersign-micro-pipeline-'));
await initHome({ home, dev: true });
disablePendingCap(home);
const config = loadConfig({ home, port: 8787, issuer: 'http://localhost:8787' });
const rows: Timing[] = [];

// ---- pieces ----
rows.push(await time('JSON.parse(body)', () => JSON.parse(bodyText), { iterations: 100_000 }));
rows.push(
  await time(
    'parseJsonBody (utf-8, depth scan, JSON.parse, checks against the text)',
    () => parseJsonBody(bodyBytes),
    {
      iterations: 50_000,
    },
  ),
);
const raw = JSON.parse(bodyText);
rows.push(
  await time('zod AccessRequestBodySchema.safeParse', () => AccessRequestBodySchema.safeParse(raw), {
    iterations: 50_000,
  }),
);
const request = AccessRequestBodySchema.parse(raw);
rows.push(
  await time('canonicalJson(body) + sha256Hex (body hash, noble)', () => sha256Hex(canonicalJson(raw)), {
    iterations: 50_000,
  }),
);
rows.push(
  await time(
    'canonicalJson(body) + node:crypto sha256',
    () => createHash('sha256').update(canonicalJson(raw)).digest('hex'),
    {
      iterations: 50_000,
    },
  ),
);

const catalog = ResourceCatalog.from(loadCatalogFile(config.catalogFile), 'urn:countersign:uncatalogued');
const agent = {
  id: 'bench-agent',
  owner: 'billing',
  boundary: 'acme',
  environment: 'production',
  trustTier: 'standard',
};
const engine = policyEngineFromDirectory(config.policyDir, config.schemaFile);
function policyInput(): { input: PolicyInput; decisionFields: unknown } {
  const action = parseActionName(request.action);
  const actionClass = classifyAction(action, {});
  const resource = parseResource(request.resource);
  const facts = catalog.resolve(resource);
  const risk = assessRisk({ agent, actionClass, facts, request }, DEFAULT_RISK_SETTINGS);
  // The product's own builder: the bench times it, never a copy of it.
  const input = buildPolicyInput({
    agent,
    action,
    actionClass,
    resource,
    facts,
    risk,
    request,
    riskSettings: DEFAULT_RISK_SETTINGS,
    ttlSeconds: request.ttl_seconds ?? 900,
  });
  const decisionFields = {
    agent: { id: agent.id, owner: agent.owner, boundary: agent.boundary, environment: agent.environment },
    action,
    action_class: actionClass,
    resource: resource.uri,
    resource_facts: facts,
    intent: request.intent,
    context: request.context,
    ttl_seconds: null,
    policy_version: engine.version,
  };
  return { input, decisionFields };
}
rows.push(
  await time('action + resource parse, catalog, risk, Cedar input', policyInput, { iterations: 50_000 }),
);
const { input, decisionFields } = policyInput();
const settings = { defaultMaxTtlSeconds: 3600, defaultDeadlineSeconds: 900, fallbackReviewGroup: null };
const evaluation = engine.evaluate(input);
const outcome = decide(evaluation, engine.version, settings).outcome;
rows.push(
  await time(`Cedar evaluate (${outcome}, preparsed, per-action set)`, () => engine.evaluate(input), {
    iterations: 5_000,
  }),
);
rows.push(
  await time('checkpoint decide', () => decide(evaluation, engine.version, settings), { iterations: 50_000 }),
);
const sample = canonicalJson(decisionFields);
rows.push(
  await time(`SHA-256 of ${sample.length} B, @noble/hashes (as core does)`, () => sha256Hex(sample), {
    iterations: 20_000,
  }),
);
rows.push(
  await time(
    `SHA-256 of ${sample.length} B, node:crypto createHash`,
    () => createHash('sha256').update(sample).digest('hex'),
    { iterations: 20_000 },
  ),
);
rows.push(
  await time('canonicalJson(decisionFields) alone', () => canonicalJson(decisionFields), {
    iterations: 20_000,
  }),
);
rows.push(
  await time('requestDigest (JCS + noble SHA-256)', () => requestDigest(decisionFields), {
    iterations: 20_000,
  }),
);
rows.push(
  await time('JSON.stringify(decisionFields) (canonical column)', () => JSON.stringify(decisionFields), {
    iterations: 50_000,
  }),
);
const event = {
  type: 'access_request.decided',
  actor: { type: 'system' as const, id: 'checkpoint' },
  requestId: 'req_x',
  data: {
    outcome,
    determining_policies: ['p'],
    policy_version: engine.version,
    risk_score: 5,
    error_code: null,
  },
};
rows.push(
  await time(
    'chainEvent (one audit event: JCS + noble SHA-256)',
    () => chainEvent({ seq: 1, hash: 'ab'.repeat(32) }, event, 'evt_x', new Date().toISOString()),
    {
      iterations: 20_000,
    },
  ),
);
rows.push(
  await time(
    'newId: randomBytes(16).toString(base64url)',
    () => `req_${randomBytes(16).toString('base64url')}`,
    { iterations: 50_000 },
  ),
);
const pool16 = randomBytes(16 * 4096);
let o = 0;
rows.push(
  await time(
    'newId from a pre-filled random pool (alternative)',
    () => {
      if (o >= pool16.length) o = 0;
      const s = pool16.toString('base64url', o, o + 16);
      o += 16;
      return `req_${s}`;
    },
    { iterations: 50_000 },
  ),
);

const db = new Kysely<Record<string, Record<string, unknown>>>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new SqliteIntrospector(k),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});
rows.push(
  await time(
    'Kysely build + compile: insert audit_events (10 cols)',
    () =>
      db
        .insertInto('audit_events')
        .values({
          seq: 1,
          id: 'e',
          at: 'a',
          type: 't',
          actor_type: 'a',
          actor_id: 'b',
          request_id: 'r',
          data: '{}',
          prev_hash: 'p',
          hash: 'h',
        })
        .compile(),
    { iterations: 50_000 },
  ),
);
rows.push(
  await time(
    'Kysely build + compile: select head of audit chain',
    () => db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).compile(),
    { iterations: 50_000 },
  ),
);
const registry = new Registry();
const hist = new Histogram({
  name: 'h',
  help: 'h',
  labelNames: ['stage'],
  buckets: [0.001, 0.01],
  registers: [registry],
});
rows.push(
  await time('prom-client histogram observe (labelled)', () => hist.observe({ stage: 'cedar' }, 0.0003), {
    iterations: 100_000,
  }),
);

// The replay filter in PrivateKeyJwtAuthenticator as it was until cdf527e: past 100,000 live
// entries, every new jti scanned the whole map for expired ones (none are, inside a 6-minute
// window). Kept to show the cliff; the product now evicts from the oldest (next row).
const recent = new Map<string, number>();
for (let i = 0; i < 100_001; i++) recent.set(`bench-agent\u0000${i}`, Date.now() + 360_000);
let j = 200_000;
rows.push(
  await time(
    'replay filter as it was before cdf527e (full scan past 100,000 jtis)',
    () => {
      const now = Date.now();
      if (recent.size > 100_000) for (const [k, t] of recent) if (t <= now) recent.delete(k);
      recent.set(`bench-agent\u0000${j++}`, now + 360_000);
    },
    { iterations: 500, warmup: 100 },
  ),
);

// The same filter evicting in insertion order and stopping at the first live entry (a fix).
const recent2 = new Map<string, number>();
for (let i = 0; i < 100_001; i++) recent2.set(`bench-agent\u0000${i}`, Date.now() + 360_000);
rows.push(
  await time(
    'replay filter, evict-from-oldest variant, 100,001 live jtis',
    () => {
      const now = Date.now();
      for (const [k, t] of recent2) {
        if (t > now) break;
        recent2.delete(k);
      }
      recent2.set(`bench-agent\u0000${j++}`, now + 360_000);
    },
    { iterations: 50_000 },
  ),
);

// ---- the whole decision, in-process (no socket, no load generator) ----
const server = await createServer(config, { logLevel: 'silent' });
const pool = new AssertionPool(await registerBenchAgent(server.deps.ctx), 'http://localhost:8787');
pool.fill(30_000);
const expected = { allow: 'allowed', deny: 'denied', review: 'pending' }[which];
const call = async () => {
  const res = await server.app.request('/v1/access-requests', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${pool.next()}` },
    body: bodyText,
  });
  if (res.status !== 201) throw new Error(`status ${res.status}: ${await res.text()}`);
  const json = (await res.json()) as { status: string };
  if (json.status !== expected) throw new Error(`expected ${expected}, got ${json.status}`);
};
rows.push(
  await time(`whole decision (${which}) via app.request, serial`, call, { iterations: 2_000, warmup: 1_000 }),
);
rows.push(
  await time(`whole decision (${which}) via app.request, 50 in flight`, call, {
    iterations: 10_000,
    warmup: 2_000,
    concurrency: 50,
  }),
);
console.log(`case: ${which}; Cedar says ${outcome}`);
report(rows);
await server.close();
rmSync(home, { recursive: true, force: true });
