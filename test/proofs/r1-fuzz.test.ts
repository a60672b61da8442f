/**
 * THREATS.md R1 (E4-E7, B1, B4, B6, F2, INV-1): fast-check over what an agent controls, driven
 * through the real Hono app in-process (app.request, no socket) on a real SQLite file with the
 * example policies: request bodies (structured and raw bytes), tokens and Authorization
 * headers, resource names and ids in paths. For every input: no uncaught exception, no 5xx,
 * and no allow for input that an independent oracle (written here, not the server's own
 * parser) calls invalid. The console's rendering of untrusted text is fuzzed in
 * apps/console/test/r1-render-fuzz.test.ts; the two print their counts and add up to the
 * R1 figure. CI runs 8,000 here (10,000 with the console's 2,000: about 4 ms of CPU each, so the CI tier stays short on a shared 2-core machine); EXTENDED=1 runs 85,000 (100,000 with the console's 15,000).
 * FC_SEED=<n> replays a run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessRequestBodySchema } from '@countersign/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness, type TestAgent } from '../support/harness.js';

const EXTENDED = process.env.EXTENDED === '1';
const TOTAL = process.env.R1_TOTAL ? Number(process.env.R1_TOTAL) : EXTENDED ? 85_000 : 8_000;
const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : Date.now() % 2_147_483_647;
// Shares of the total per property.
const SHARE = { bodies: 0.3, raw: 0.15, tokens: 0.25, resources: 0.2, paths: 0.1 } as const;

interface Tally {
  inputs: number;
  status: Record<string, number>;
  fiveXX: number;
  allowedInvalid: number;
  allowed: number;
  skippedEquivalent: number;
}

const tallies: Record<string, Tally> = {};
const crashes: unknown[] = [];

function tally(name: string): Tally {
  tallies[name] ??= { inputs: 0, status: {}, fiveXX: 0, allowedInvalid: 0, allowed: 0, skippedEquivalent: 0 };
  return tallies[name]!;
}

function record(t: Tally, status: number, json: any, invalid: boolean): void {
  t.inputs++;
  const bucket = `${Math.floor(status / 100)}xx`;
  t.status[bucket] = (t.status[bucket] ?? 0) + 1;
  if (status >= 500) t.fiveXX++;
  const allowed = json?.status === 'allowed' || json?.credential !== undefined;
  if (allowed) t.allowed++;
  if (allowed && invalid) t.allowedInvalid++;
}

async function readBody(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Strict UTF-8, JSON and the wire schema: what "valid input" means, decided outside the server. */
function bodyIsValid(bytes: Uint8Array): boolean {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return false;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  return AccessRequestBodySchema.safeParse(value).success;
}

const RESOURCE_HOST = /^[a-z0-9][a-z0-9.-]*$/;
/** An independent reading of THREATS.md F2/F3 for resource names: what must never be allowed. */
function resourceIsInvalid(r: string): boolean {
  if (/[^\x21-\x7e]/.test(r)) return true; // non-ASCII, controls, whitespace
  if (/[%\\"<>^`{|}[\]?#]/.test(r)) return true; // escapes, backslashes, URL delimiters
  const m = /^([a-z][a-z0-9+-]*):\/\/(.*)$/.exec(r);
  if (!m) return true;
  const segments = m[2]!.split('/');
  if (segments.some((s) => s === '' || /^\.+$/.test(s) || s.endsWith('.'))) return true;
  return !RESOURCE_HOST.test(segments[0]!);
}

const tricky = fc.constantFrom(
  '.',
  '..',
  '%2e',
  '%2F',
  '\\',
  '／',
  '．',
  '\u0430',
  '\u200b',
  '\u202e',
  ' ',
  '@',
  ':',
  '//',
  '?',
  '#',
  'A',
  'a',
  '0',
  '-',
  '_',
  '~',
  '\n',
  '\u0000',
  '\ud800',
);
const nameish = fc.array(
  fc.oneof(fc.stringMatching(/^[a-z0-9]{1,6}$/), tricky, fc.string({ maxLength: 4 })),
  {
    maxLength: 8,
  },
);

// Mostly hostile names; a few valid catalogued ones keep the allow path (and its commit) in play.
const resourceArb: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 80, unit: 'binary' }), weight: 3 },
  { arbitrary: nameish.map((parts) => `postgres://staging/app/${parts.join('')}`), weight: 4 },
  { arbitrary: nameish.map((parts) => `postgres://${parts.join('/')}`), weight: 2 },
  {
    arbitrary: fc
      .tuple(fc.constantFrom('postgres', 'POSTGRES', 's3', 'secret', 'https', 'p%6f'), nameish)
      .map(([scheme, parts]) => `${scheme}://${parts.join('/')}`),
    weight: 2,
  },
  { arbitrary: fc.stringMatching(/^postgres:\/\/staging\/app\/[a-z0-9]{1,10}$/), weight: 1 },
);

const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(-0, 2 ** 64, 2 ** 53, Number.NaN, '', '\ud800', '__proto__'),
);

/** A valid body with one field replaced, removed or added. */
const nearValidBody: fc.Arbitrary<unknown> = fc
  .tuple(
    fc.constantFrom(
      'action',
      'resource',
      'intent',
      'intent.purpose',
      'intent.task_id',
      'intent.ticket',
      'context',
      'context.environment',
      'context.tool_chain',
      'context.model_output',
      'ttl_seconds',
      'extra',
      '__proto__',
      'constructor',
    ),
    fc.oneof(jsonish, fc.constant(undefined)),
  )
  .map(([path, value]) => {
    const b: any = body({ context: { environment: 'staging' } });
    const [head, tail] = path.split('.') as [string, string | undefined];
    if (tail === undefined) {
      if (value === undefined) delete b[head];
      else Object.defineProperty(b, head, { value, enumerable: true, writable: true, configurable: true });
    } else if (value === undefined) delete b[head][tail];
    else b[head][tail] = value;
    return b;
  });

function b64url(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString('base64url');
}

/** Header-safe: the Fetch Headers class refuses CR, LF, NUL and anything above U+00FF. */
function headerSafe(s: string): string {
  return s.replace(/[\r\n\0]/g, '').replace(/[^\x00-\xff]/g, '?');
}

describe('R1 fuzzing the agent API in-process', () => {
  let h: Harness;
  let home: string;
  let agent: TestAgent;
  let stranger: TestAgent;
  const onCrash = (e: unknown) => crashes.push(e);

  beforeAll(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    // The data directory goes on tmpfs when there is one: this suite is about input handling,
    // and on a shared CI disk every decision's fsync would dominate it. Still a real SQLite
    // file with synchronous=FULL; durability is R3's subject.
    home = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'countersign-r1-'));
    h = await startHarness({ home });
    agent = await h.addAgent('fuzz-bot', { environment: 'staging' });
    // Registered and active, but never the signer of `agent`'s tokens.
    stranger = await h.addAgent('stranger-bot', { environment: 'staging' });
  }, 120_000);

  afterAll(async () => {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    const totals = Object.values(tallies).reduce(
      (a, t) => ({
        inputs: a.inputs + t.inputs,
        fiveXX: a.fiveXX + t.fiveXX,
        allowedInvalid: a.allowedInvalid + t.allowedInvalid,
      }),
      { inputs: 0, fiveXX: 0, allowedInvalid: 0 },
    );
    console.log(
      JSON.stringify({
        goal: 'R1',
        part: 'agent API',
        seed: SEED,
        inputs: totals.inputs,
        crashes: crashes.length,
        http_5xx: totals.fiveXX,
        allows_of_invalid_input: totals.allowedInvalid,
        by_property: tallies,
      }),
    );
    await h?.close();
    rmSync(home, { recursive: true, force: true });
  });

  const runs = (share: number) => Math.round(TOTAL * share);
  /**
   * fast-check runs one property at a time; each run here is a batch of inputs sent at once,
   * so decisions that commit share group commits (and fsyncs) as they would under real load.
   */
  const BATCH = 25;
  const batches = (share: number) => Math.ceil(runs(share) / BATCH);
  const batchOf = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: BATCH, maxLength: BATCH });
  const each =
    <T>(check: (input: T) => Promise<void>) =>
    async (inputs: T[]) => {
      await Promise.all(inputs.map(check));
    };

  it(`R1 E6 E7 request bodies (${runs(SHARE.bodies)} structured): no 5xx, schema-invalid bodies never allowed`, async () => {
    const t = tally('bodies');
    await fc.assert(
      fc.asyncProperty(
        batchOf(fc.oneof({ arbitrary: jsonish, weight: 3 }, { arbitrary: nearValidBody, weight: 2 })),
        each(async (value) => {
          const text = JSON.stringify(value) ?? 'undefined';
          const bytes = new TextEncoder().encode(text);
          const res = await h.call('POST', '/v1/access-requests', { agent, rawBody: text });
          const json = await readBody(res);
          const invalid = !bodyIsValid(bytes);
          record(t, res.status, json, invalid);
          expect(res.status).toBeLessThan(500);
          if (invalid) expect(res.status, JSON.stringify(json)).toBeGreaterThanOrEqual(400);
        }),
      ),
      { numRuns: batches(SHARE.bodies), seed: SEED },
    );
    expect(crashes).toEqual([]);
    expect(t.allowed).toBeGreaterThan(0);
  }, 900_000);

  it(`R1 E4 E5 E6 raw request bodies (${runs(SHARE.raw)}: bytes, broken UTF-8, mangled JSON, deep nesting): no 5xx, never allowed unless valid`, async () => {
    const t = tally('raw');
    const valid = JSON.stringify(body());
    const raw = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.string({ maxLength: 200, unit: 'binary' }).map((s) => new TextEncoder().encode(s)),
      fc
        .tuple(fc.nat(valid.length), fc.nat(4), fc.string({ maxLength: 3, unit: 'binary' }))
        .map(([at, cut, insert]) =>
          new TextEncoder().encode(valid.slice(0, at) + insert + valid.slice(at + cut)),
        ),
      fc
        .tuple(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom('[', '{"a":'))
        .map(([depth, open]) => new TextEncoder().encode(open.repeat(depth))),
      fc
        .constantFrom(
          '{"action":"read","resource":"postgres://staging/app/orders","intent":{"purpose":"x","task_id":"t"},"ttl_seconds":12345678901234567890}',
          '{"action":"read","action":"delete","resource":"postgres://staging/app/orders","intent":{"purpose":"x","task_id":"t"}}',
          '{"__proto__":{"isAdmin":true},"action":"read","resource":"postgres://staging/app/orders","intent":{"purpose":"x","task_id":"t"}}',
          '\ufeff{"action":"read","resource":"postgres://staging/app/orders","intent":{"purpose":"x","task_id":"t"}}',
        )
        .map((text) => new TextEncoder().encode(text)),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).map((junk) => {
        const bytes = new TextEncoder().encode(valid);
        const out = new Uint8Array(bytes.length + junk.length);
        out.set(bytes.subarray(0, 20));
        out.set(junk, 20);
        out.set(bytes.subarray(20), 20 + junk.length);
        return out;
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        batchOf(raw),
        each(async (bytes) => {
          const res = await h.call('POST', '/v1/access-requests', { agent, rawBody: bytes });
          const json = await readBody(res);
          const invalid = !bodyIsValid(bytes);
          record(t, res.status, json, invalid);
          expect(res.status).toBeLessThan(500);
          if (invalid) expect(res.status).toBeGreaterThanOrEqual(400);
        }),
      ),
      { numRuns: batches(SHARE.raw), seed: SEED + 1 },
    );
    expect(crashes).toEqual([]);
  }, 900_000);

  it(`R1 B1 B4 B6 tokens and Authorization headers (${runs(SHARE.tokens)}): every one refused with 401/400, none allowed`, async () => {
    const t = tally('tokens');
    const valid = await h.assertion(agent);
    const segment = fc.oneof(
      fc.string({ maxLength: 40 }).map(b64url),
      fc
        .record({
          alg: fc.constantFrom('none', 'None', 'HS256', 'EdDSA', 'RS256', 'ES256', ''),
          typ: fc.constantFrom('JWT', 'at+jwt', 'dpop+jwt', undefined),
          kid: fc.oneof(fc.string(), fc.constant('../../etc/passwd'), fc.constant("' OR 1=1 --")),
          jku: fc.constantFrom('http://127.0.0.1:1/jwks', undefined),
          crit: fc.constantFrom(['exp'], ['b64'], undefined),
        })
        .map((hdr) => b64url(JSON.stringify(hdr))),
      fc
        .record({
          iss: fc.constantFrom('fuzz-bot', 'stranger-bot', '', 'x'),
          sub: fc.constantFrom('fuzz-bot', 'other'),
          aud: fc.constantFrom('http://localhost:8787', ['http://localhost:8787', 'x'], 'x'),
          jti: fc.string(),
          iat: fc.oneof(fc.integer(), fc.constant(Math.floor(h.clock.now() / 1000))),
          exp: fc.oneof(fc.integer(), fc.constant(Math.floor(h.clock.now() / 1000) + 60), fc.string()),
        })
        .map((claims) => b64url(JSON.stringify(claims))),
    );
    const jwtish = fc.tuple(segment, segment, fc.oneof(segment, fc.constant(''))).map((s) => s.join('.'));
    const base64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const mutated = fc
      .tuple(
        fc.nat(valid.length - 1),
        fc.constantFrom(...base64url.split('')),
        fc.constantFrom('flip', 'cut', 'dup'),
      )
      .map(([at, ch, how]) => {
        if (how === 'cut') return valid.slice(0, at);
        if (how === 'dup') return valid.slice(0, at) + valid.slice(at - 1);
        return valid.slice(0, at) + ch + valid.slice(at + 1);
      });
    const header = fc.oneof(
      jwtish.map((j) => `Bearer ${j}`),
      mutated.map((m) => `Bearer ${m}`),
      fc
        .tuple(
          fc.constantFrom('Bearer', 'bearer', 'DPoP', 'Basic', 'Bearer  ', ''),
          fc.string({ maxLength: 60 }),
        )
        .map(([scheme, rest]) => headerSafe(`${scheme} ${rest}`)),
      fc.constant('stranger').map(() => 'stranger'),
    );
    const decoded = (token: string) =>
      token
        .split('.')
        .map((s) => Buffer.from(s, 'base64url').toString('hex'))
        .join('.');
    await fc.assert(
      fc.asyncProperty(
        batchOf(header),
        each(async (value: string) => {
          let auth = value;
          // A token signed by another registered agent's key, claiming to be this agent.
          if (value === 'stranger') auth = `Bearer ${await h.assertion(agent, { key: stranger.privateJwk })}`;
          const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
          // Base64url has spare bits in a last character: a "mutation" that decodes to the very
          // same bytes is the same token, not an invalid one.
          if (token.split('.').length === 3 && decoded(token) === decoded(valid)) {
            t.skippedEquivalent++;
            return;
          }
          const res = await h.call('POST', '/v1/access-requests', {
            body: body({ intent: { purpose: 'fuzz', task_id: 'fuzz' } }),
            headers: { authorization: auth },
          });
          const json = await readBody(res);
          record(t, res.status, json, true);
          expect(res.status).toBeLessThan(500);
          expect([400, 401]).toContain(res.status);
        }),
      ),
      { numRuns: batches(SHARE.tokens), seed: SEED + 2 },
    );
    expect(crashes).toEqual([]);
  }, 900_000);

  it(`R1 F2 F3 D3 resource names (${runs(SHARE.resources)}): no 5xx; names outside the strict grammar are never allowed`, async () => {
    const t = tally('resources');
    await fc.assert(
      fc.asyncProperty(
        batchOf(resourceArb),
        each(async (resource: string) => {
          const text = JSON.stringify(body({ resource, context: { environment: 'staging' } }));
          const res = await h.call('POST', '/v1/access-requests', { agent, rawBody: text });
          const json = await readBody(res);
          const invalid = resourceIsInvalid(resource) || !bodyIsValid(new TextEncoder().encode(text));
          record(t, res.status, json, invalid);
          expect(res.status).toBeLessThan(500);
          if (invalid) expect(json?.status).not.toBe('allowed');
        }),
      ),
      { numRuns: batches(SHARE.resources), seed: SEED + 3 },
    );
    expect(crashes).toEqual([]);
    // The generator reaches the allow path too (valid catalogued names under staging/app).
    expect(t.allowed).toBeGreaterThan(0);
  }, 900_000);

  it(`R1 F1 ids in paths and queries (${runs(SHARE.paths)}): no 5xx, nothing found or done for a made-up id`, async () => {
    const t = tally('paths');
    const id = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom("1' OR '1'='1", '../../etc/passwd', '%00', '%2e%2e', `req_${'a'.repeat(300)}`),
    );
    const route = fc.tuple(
      id,
      fc.constantFrom('get', 'withdraw', 'wait', 'introspect'),
      fc.string({ maxLength: 6 }),
    );
    await fc.assert(
      fc.asyncProperty(
        batchOf(route),
        each(async ([raw, kind, query]) => {
          const seg = encodeURIComponent(raw);
          let res: Response;
          if (kind === 'get') res = await h.call('GET', `/v1/access-requests/${seg}`, { agent });
          else if (kind === 'withdraw')
            res = await h.call('POST', `/v1/access-requests/${seg}/withdraw`, { agent });
          else if (kind === 'wait')
            res = await h.call('GET', `/v1/access-requests/${seg}?wait=${encodeURIComponent(query)}`, {
              agent,
            });
          else
            res = await h.call('POST', '/oauth/introspect', {
              agent,
              rawBody: new URLSearchParams({ token: raw }).toString(),
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
            });
          const json = await readBody(res);
          record(t, res.status, json, true);
          expect(res.status).toBeLessThan(500);
          if (kind === 'introspect') {
            // RFC 7662: an unknown token is `active: false`; a missing one is a bad request.
            if (raw === '') expect(res.status).toBe(400);
            else {
              expect(res.status).toBe(200);
              expect(json.active).toBe(false);
            }
          } else expect(res.status).toBeGreaterThanOrEqual(400);
        }),
      ),
      { numRuns: batches(SHARE.paths), seed: SEED + 4 },
    );
    expect(crashes).toEqual([]);
  }, 900_000);
});
