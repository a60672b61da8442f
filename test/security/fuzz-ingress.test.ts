/**
 * Goal R1, CI tier (scaled to well under 60 s): generated hostile bodies posted to
 * POST /v1/access-requests never produce a 5xx, an uncaught exception or an unhandled
 * rejection, and never an allow (or any credential) unless the body is schema-valid.
 * SECURITY_SEED reproduces a run; SECURITY_RUNS or RELIABILITY=extended scales it.
 */
import { AccessRequestBodySchema } from '@countersign/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness, type TestAgent, withoutPendingCap } from '../support/harness.js';
import { suiteSeed } from './attack-kit.js';

const SEED = suiteSeed();
const RUNS = Number(process.env.SECURITY_RUNS ?? (process.env.RELIABILITY === 'extended' ? 10_000 : 1_500));
const EXPECTED_STATUSES = new Set([200, 201, 400, 401, 409, 413, 422]);

const VALID_BODIES: Array<Record<string, unknown>> = [
  body(),
  body({ resource: 'postgres://staging/app/invoices', ttl_seconds: 60 }),
  body({ action: 'write', resource: 'postgres://prod/billing/invoices' }),
  body({ action: 'export', resource: 'secret://kms/prod-signing-key' }),
  body({ resource: 'https://docs.acme.dev/guide/intro' }),
  body({
    intent: { purpose: 'Summarise the web page', task_id: 'fuzz-1', ticket: 'OPS-1' },
    context: {
      environment: 'staging',
      on_behalf_of: 'alice',
      tool_chain: [{ tool: 'browser', source: 'untrusted', summary: 'read a page' }],
      model_output: 'ok',
    },
  }),
];

const PATHS = [
  ['action'],
  ['resource'],
  ['intent'],
  ['intent', 'purpose'],
  ['intent', 'task_id'],
  ['intent', 'ticket'],
  ['context'],
  ['context', 'environment'],
  ['context', 'on_behalf_of'],
  ['context', 'tool_chain'],
  ['context', 'tool_chain', '0'],
  ['context', 'tool_chain', '0', 'tool'],
  ['context', 'tool_chain', '0', 'source'],
  ['context', 'model_output'],
  ['ttl_seconds'],
  ['is_admin'],
  ['intent', 'approved_by'],
] as const;

const hostileString = fc.constantFrom(
  '',
  '\u0000',
  '\ud800',
  '\u202e',
  '\u200d',
  'postgres://staging/app/../../prod/billing/invoices',
  'postgres://staging/app/%2e%2e',
  'postgres://prod/d\u0430tabase',
  "' OR 1=1 --",
  '__proto__',
  'read',
  'delete',
  'admin',
  'A'.repeat(5000),
  'secret://kms/*',
  'postgres://staging/app/orders',
);
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  hostileString,
  fc.constantFrom(0, -1, 1, 86_400, 86_401, 1.5, Number.MAX_SAFE_INTEGER, null, true, [], {}),
);

type Mutation = { path: readonly string[]; op: 'set' | 'delete'; value: unknown };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  path: fc.constantFrom(...PATHS),
  op: fc.constantFrom('set', 'set', 'delete'),
  value: hostileValue,
});

function applyMutation(target: Record<string, unknown>, m: Mutation): void {
  let node: Record<string, unknown> = target;
  for (const key of m.path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object') return;
    node = next as Record<string, unknown>;
  }
  const last = m.path[m.path.length - 1]!;
  if (m.op === 'delete') delete node[last];
  else node[last] = m.value;
}

/** Byte-level edits of valid JSON text: splice, delete, duplicate a span. */
const textEditArb = fc.record({
  kind: fc.constantFrom('insert', 'delete', 'replace', 'duplicate'),
  at: fc.nat(),
  length: fc.integer({ min: 1, max: 12 }),
  text: fc.oneof(
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.constantFrom(
      '"',
      '\\',
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      '"__proto__":{}',
      '"action":"delete",',
      '1e400',
      '\\ud800',
    ),
  ),
});

function applyTextEdit(text: string, e: { kind: string; at: number; length: number; text: string }): string {
  const at = e.at % (text.length + 1);
  switch (e.kind) {
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + e.length);
    case 'replace':
      return text.slice(0, at) + e.text + text.slice(at + e.text.length);
    default:
      return text.slice(0, at + e.length) + text.slice(at, at + e.length) + text.slice(at + e.length);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Is the body, as our oracle reads the bytes actually sent, a schema-valid request? */
function schemaValid(bytes: Uint8Array): boolean {
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return false;
  }
  return AccessRequestBodySchema.safeParse(value).success;
}

describe('R1 generated hostile bodies (CI tier)', () => {
  let h: Harness;
  let agent: TestAgent;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const tally = new Map<string, number>();
  let total = 0;
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    // Thousands of mutated bodies from one agent, many of them reviews: no pending cap here.
    h = await startHarness({ configure: withoutPendingCap });
    agent = await h.addAgent('spiffe://acme.dev/agent/fuzz-bot', { owner: 'app' });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await h.close();
  });

  /** The R1 oracle for one posted body. */
  async function check(input: string | Uint8Array): Promise<void> {
    // Encode here so that the oracle judges exactly the bytes sent (a lone surrogate in a JS
    // string becomes U+FFFD on the wire).
    const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
    const raw = Buffer.from(bytes).toString('utf8');
    const res = await h.call('POST', '/v1/access-requests', { agent, rawBody: bytes });
    const text = await res.text();
    total++;
    const label = `${res.status}`;
    tally.set(label, (tally.get(label) ?? 0) + 1);
    expect(res.status, `${raw.slice(0, 300)}\n=> ${text.slice(0, 300)}`).toBeLessThan(500);
    expect(EXPECTED_STATUSES.has(res.status), `${res.status}: ${text.slice(0, 200)}`).toBe(true);
    const json = JSON.parse(text) as { status?: string; credential?: unknown; error?: { code?: string } };
    if (res.status >= 400) {
      expect(json.error?.code, text).toMatch(/^CS_[A-Z_]+$/);
      expect(json.credential).toBeUndefined();
      return;
    }
    const valid = schemaValid(bytes);
    if (json.status === 'allowed' || json.credential !== undefined) {
      expect(valid, `allowed a schema-invalid body: ${raw.slice(0, 300)}`).toBe(true);
    }
    if (json.credential !== undefined) expect(json.status).toBe('allowed');
  }

  it('R1 arbitrary JSON values as the body: never 5xx, never an allow', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 8 }), async (value) => {
        await check(JSON.stringify(value));
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`R1 arbitrary JSON: seed=${SEED} runs=${RUNS}`);
  });

  it('R1 mutated valid bodies (set/delete any field to hostile values): never 5xx, allow only when schema-valid', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...VALID_BODIES),
        fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
        async (base, mutations) => {
          const target = structuredClone(base);
          for (const m of mutations) applyMutation(target, m);
          await check(JSON.stringify(target));
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`R1 mutated objects: seed=${SEED} runs=${RUNS}`);
  });

  it('R1 byte-level edits of valid JSON text: never 5xx, allow only when schema-valid', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...VALID_BODIES),
        fc.array(textEditArb, { minLength: 1, maxLength: 3 }),
        async (base, edits) => {
          let text = JSON.stringify(base);
          for (const e of edits) text = applyTextEdit(text, e);
          await check(text);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`R1 text edits: seed=${SEED} runs=${RUNS}`);
  });

  it('R1 random byte edits of valid UTF-8 bodies (invalid UTF-8, raw controls, truncation): never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...VALID_BODIES),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
          minLength: 1,
          maxLength: 4,
        }),
        async (base, edits) => {
          const bytes = [...new TextEncoder().encode(JSON.stringify(base))];
          for (const [at, value, insert] of edits) {
            const i = at % (bytes.length + 1);
            if (insert) bytes.splice(i, 0, value);
            else bytes[Math.min(i, bytes.length - 1)] = value;
          }
          await check(new Uint8Array(bytes));
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`R1 byte edits: seed=${SEED} runs=${RUNS}`);
  });

  it('R1 summary: no unhandled rejection or uncaught exception, and a valid request still succeeds', async () => {
    const { status, json } = await h.requestAccess(agent, body());
    expect(status).toBe(201);
    expect(json.status).toBe('allowed');
    console.log(
      `R1 total generated inputs=${total} seed=${SEED} statuses=${JSON.stringify(Object.fromEntries(tally))} ` +
        `(reproduce with SECURITY_SEED=${SEED} SECURITY_RUNS=${RUNS})`,
    );
    expect(unhandled).toEqual([]);
  });
});
