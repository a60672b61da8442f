/**
 * Resource names and identifiers (THREATS.md F2, F3, D3): a strict grammar, segment-wise
 * wildcards, ASCII only. Attacks go through the HTTP front door, and the core parser and
 * matcher are checked directly with fast-check properties (seed printed for reproduction).
 */
import {
  matchesPattern,
  parsePattern,
  parseResource,
  ResourceCatalog,
  type ResourceName,
  type ResourcePattern,
  registerAgent,
  validateAgentId,
} from '@countersign/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, newKeyPair, startHarness, type TestAgent } from '../support/harness.js';
import { dbCounts, expectRefused, readJson, suiteSeed } from './attack-kit.js';

const RESOURCE_CODES = ['CS_INVALID_RESOURCE', 'CS_INVALID_REQUEST'] as const;
const SEED = suiteSeed();
const RUNS = Number(process.env.SECURITY_RUNS ?? 2_000);

/** A valid segment: starts with a letter or digit, then the allowed set, never ends with a dot. */
const segmentArb = fc
  .stringMatching(/^[A-Za-z0-9][A-Za-z0-9._@+=,:~-]{0,15}$/)
  .filter((s) => !s.endsWith('.'));
const schemeArb = fc.stringMatching(/^[a-z][a-z0-9+-]{0,7}$/);
/** The first segment is a host: lowercase letters, digits and hyphens here. */
const hostArb = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/);

/** Reference model: a pattern segment matches iff equal or `*`; a trailing `*` takes 1..n segments. */
function referenceMatch(pattern: readonly string[], name: readonly string[]): boolean {
  if (pattern.length === 0) return name.length === 0;
  const [p, ...rest] = pattern;
  if (p === '*' && rest.length === 0) return name.length >= 1;
  if (name.length === 0) return false;
  return (p === '*' || p === name[0]) && referenceMatch(rest, name.slice(1));
}

const TRAVERSAL_CORPUS = [
  'postgres://staging/app/../../prod/billing/invoices',
  'postgres://staging/app/..',
  'postgres://staging/../prod/x',
  'postgres://staging/./app/orders',
  'postgres://staging/app/./orders',
  'postgres://staging/app/orders/.',
  'postgres://staging/app/orders/',
  'postgres://staging/app/...',
  'postgres://staging/app/..../x',
  'postgres://staging/app/%2e%2e%2fprod',
  'postgres://staging/app/%2E%2E/prod',
  'postgres://staging/app/%252e%252e%252fprod',
  'postgres://staging/app/%c0%ae%c0%ae/prod',
  'postgres://staging/app/..%2fprod',
  'postgres://staging/app/%2fprod',
  'postgres://staging\\app\\orders',
  'postgres://staging/app\\..\\..\\prod',
  'postgres://staging/app/orders.',
  'postgres://staging./app/orders',
  'postgres://staging/app/orders..',
  'postgres://staging/app/．．／prod',
  'postgres://staging/app/．．/prod',
  'postgres://staging/app/／prod',
  'postgres://staging/app/ord\u2024ers',
  'postgres://staging//app/orders',
  'postgres:///staging/app/orders',
  'postgres://',
  'postgres:///',
  'postgres://staging/app/orders\u0000',
  'postgres://staging/app/or\u0000ders',
  'postgres://staging/app/orders\n',
  'postgres://staging/app/or\rders',
  'postgres://staging/app/or\tders',
  'postgres://staging/app/or\u007fders',
  'postgres://staging/app/or\u0085ders',
  'postgres://staging/app/or ders',
  ' postgres://staging/app/orders',
  'postgres://staging/app/orders ',
  'postgres://staging/app/orders?x=1',
  'postgres://staging/app/orders#frag',
  'postgres://staging/app/*',
  'postgres://staging/*/orders',
  'postgres://staging/app/.hidden',
  'postgres://staging/app/-flag',
  'Postgres://staging/app/orders',
  'POSTGRES://staging/app/orders',
  '://staging/app/orders',
  'postgres:/staging/app/orders',
  'postgres:staging/app/orders',
  'staging/app/orders',
  '../../etc/passwd',
  'file:///etc/passwd',
  'postgres://staging/app/orders\u202e',
  `postgres://staging/${'a/'.repeat(40)}b`,
  `postgres://staging/${'a'.repeat(129)}`,
  `postgres://${'a'.repeat(600)}`,
];

describe('resource names through the front door', () => {
  let h: Harness;
  let agent: TestAgent;
  beforeAll(async () => {
    h = await startHarness();
    agent = await h.addAgent('spiffe://acme.dev/agent/resource-bot', { owner: 'app' });
  });
  afterAll(async () => h.close());

  const ask = (overrides: Record<string, unknown>) =>
    h.call('POST', '/v1/access-requests', { agent, body: body(overrides) });

  it('F2 the control request postgres://staging/app/orders is allowed', async () => {
    const res = await ask({});
    expect(res.status).toBe(201);
    expect((await readJson(res)).status).toBe('allowed');
  });

  it(`F2 ${TRAVERSAL_CORPUS.length} traversal, encoding, dot, backslash, fullwidth, control and space variants are 400 CS_INVALID_RESOURCE`, async () => {
    const before = dbCounts(h);
    for (const resource of TRAVERSAL_CORPUS) {
      for (const action of ['read', 'write']) {
        const r = await expectRefused(await ask({ action, resource }), 400, RESOURCE_CODES);
        expect(r.text, JSON.stringify(resource)).not.toContain('"allowed"');
      }
    }
    const after = dbCounts(h);
    expect(after.requests).toBe(before.requests);
    expect(after.leases).toBe(before.leases);
  });

  it('F2 the same corpus at the parser: every entry throws CS_INVALID_RESOURCE', () => {
    for (const resource of TRAVERSAL_CORPUS) {
      expect(() => parseResource(resource), JSON.stringify(resource)).toThrow(
        expect.objectContaining({ code: 'CS_INVALID_RESOURCE' }),
      );
    }
  });

  it('F2 the resource length bound is 512 at the parser and the schema', async () => {
    // Segments over 128 characters are refused, so build 512 out of several segments.
    const valid = `postgres://staging/app/${Array.from({ length: 5 }, () => 'a'.repeat(97)).join('/')}`;
    expect(valid.length).toBe(512);
    expect(parseResource(valid).segments).toHaveLength(7);
    expect(() => parseResource(`${valid}b`)).toThrow(
      expect.objectContaining({ code: 'CS_INVALID_RESOURCE' }),
    );
    await expectRefused(await ask({ resource: `${valid}b` }), 400, RESOURCE_CODES);
  });

  it('F3 postgres://production/x, postgres://prod-evil/x and postgres://staging-evil/app/orders are not matched by prod/* or staging/*', async () => {
    // staging/app/* would allow a read; a look-alike first segment must fall to "uncatalogued".
    for (const resource of [
      'postgres://staging-evil/app/orders',
      'postgres://stagingX/app/orders',
      'postgres://STAGING/app/orders',
      'postgres://staging:5432/app/orders',
      'postgres://staging@evil/app/orders',
    ]) {
      // Either refused at ingress (STAGING, staging@evil: the first segment must be a
      // lowercase host that a URL parser reads the same way) or decided as uncatalogued.
      const res = await ask({ resource });
      const json = await readJson(res);
      expect([201, 400], resource).toContain(res.status);
      expect(json.status, resource).not.toBe('allowed');
      expect(json.credential).toBeUndefined();
    }
    for (const resource of ['postgres://production/x', 'postgres://prod-evil/billing/invoices']) {
      const res = await ask({ action: 'write', resource });
      const json = await readJson(res);
      expect(json.status, resource).toBe('denied');
      expect(json.decision?.determining_policies.map((p) => p.id)).toContain('forbid-uncatalogued-change');
    }
  });

  it('D3 a Cyrillic "а" in postgres://prod/dаtabase (and other homoglyphs) is 400 CS_INVALID_RESOURCE', async () => {
    const corpus = [
      'postgres://prod/d\u0430tabase',
      'postgres://st\u0430ging/app/orders',
      'postgres://staging/\u0430pp/orders',
      'postgres://staging/app/\u043erders',
      'postgres://staging/app/ord\u0435rs',
      'p\u043estgres://staging/app/orders',
      'postgres://staging/app/\uff4f\uff52\uff44\uff45\uff52\uff53',
      'postgres://staging/app/orders\u0131',
      'postgres://staging/app/ordeʀs',
    ];
    for (const resource of corpus) await expectRefused(await ask({ resource }), 400, RESOURCE_CODES);
  });

  it('D3 zero-width and invisible characters inside a resource are 400 CS_INVALID_RESOURCE', async () => {
    for (const ch of [
      '\u200b',
      '\u200c',
      '\u200d',
      '\u2060',
      '\ufeff',
      '\u00ad',
      '\u180e',
      '\u2063',
      '\u034f',
    ]) {
      await expectRefused(await ask({ resource: `postgres://staging/app/or${ch}ders` }), 400, RESOURCE_CODES);
      await expectRefused(await ask({ resource: `postgres://staging/app${ch}/orders` }), 400, RESOURCE_CODES);
    }
  });

  it('D3 homoglyphs and zero-width characters in task ids, tickets, on_behalf_of, environment and tool names are 400 CS_INVALID_REQUEST', async () => {
    const intent = (task_id: string, ticket?: string) => ({
      purpose: 'p',
      task_id,
      ...(ticket ? { ticket } : {}),
    });
    const cases: Array<Record<string, unknown>> = [
      { intent: intent('t\u200dask-1') },
      { intent: intent('t\u0430sk-1') },
      { intent: intent('task-1', 'OPS\u200b-1') },
      { context: { on_behalf_of: 'ali\u0441e' } },
      { context: { on_behalf_of: 'alice\u200d' } },
      { context: { environment: 'pr\u043eduction' } },
      { context: { tool_chain: [{ tool: 's\u0435arch' }] } },
      { context: { tool_chain: [{ tool: 'search\u2060' }] } },
      { action: 'r\u0435ad' },
      { action: 're\u200dad' },
    ];
    for (const overrides of cases) {
      await expectRefused(await ask(overrides), 400, ['CS_INVALID_REQUEST', 'CS_INVALID_IDENTIFIER']);
    }
  });

  it('D3 an agent id with a zero-width joiner or a Cyrillic letter cannot be registered', async () => {
    const { publicJwk } = await newKeyPair();
    for (const id of [
      'spiffe://acme.dev/agent/invoice\u200d-bot',
      'spiffe://acme.dev/agent/\u0456nvoice-bot',
      'spiffe://\u0430cme.dev/agent/invoice-bot',
      'invoice\u200b-bot',
      'spiffe://acme.dev/agent/../admin',
      'spiffe://ACME.dev/agent/x',
    ]) {
      expect(() => validateAgentId(id), JSON.stringify(id)).toThrow(
        expect.objectContaining({ code: 'CS_INVALID_IDENTIFIER' }),
      );
      await expect(
        registerAgent({
          ctx: h.server.deps.ctx,
          actor: { type: 'operator', id: 'test' },
          input: {
            id,
            owner: 'app',
            boundary: 'acme',
            environment: 'production',
            publicJwk,
            jwkThumbprint: id,
          },
        }),
      ).rejects.toMatchObject({ code: 'CS_INVALID_IDENTIFIER' });
    }
  });

  it('D3 an assertion naming a look-alike of a registered agent (ZWJ, Cyrillic) is 401 CS_AGENT_UNKNOWN, even signed with the real key', async () => {
    for (const id of [
      'spiffe://acme.dev/agent/resource\u200d-bot',
      'spiffe://acme.dev/agent/res\u043eurce-bot',
      'spiffe://acme.dev/agent/resource-bot\u200b',
    ]) {
      const token = await h.assertion({ ...agent, id });
      const res = await h.call('POST', '/v1/access-requests', { token, body: body() });
      await expectRefused(res, 401, ['CS_AGENT_UNKNOWN', 'CS_TOKEN_INVALID']);
    }
  });
});

describe('F2 F3 the core parser and matcher (fast-check)', () => {
  it('F2 every accepted resource name is canonical: no dot, empty or encoded segments, ASCII only, URL-stable', () => {
    const hostile = fc.constantFrom(
      '..',
      '.',
      '',
      '%2e',
      '%2f',
      '\\',
      '．',
      '／',
      '\u0000',
      ' ',
      '\u200d',
      '\u0430',
      '?',
      '#',
      '*',
      '\n',
    );
    const candidate = fc
      .tuple(
        schemeArb,
        fc.array(
          fc.oneof(
            segmentArb,
            hostile,
            fc.tuple(segmentArb, hostile).map(([a, b]) => a + b),
          ),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
      )
      .map(([scheme, segs]) => `${scheme}://${segs.join('/')}`);
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          candidate,
          fc
            .tuple(schemeArb, fc.array(segmentArb, { minLength: 1, maxLength: 6 }))
            .map(([scheme, segs]) => `${scheme}://${segs.join('/')}`),
          fc.string({ unit: 'binary', maxLength: 60 }),
        ),
        (text) => {
          let name: ResourceName;
          try {
            name = parseResource(text);
          } catch (error) {
            expect((error as { code?: string }).code).toBe('CS_INVALID_RESOURCE');
            return;
          }
          accepted++;
          expect(name.uri).toBe(text);
          expect(`${name.scheme}://${name.segments.join('/')}`).toBe(text);
          expect(text).toMatch(/^[\x21-\x7e]+$/);
          for (const s of name.segments) {
            expect(s).not.toBe('');
            expect(s).not.toMatch(/^\.+$/);
            expect(s).not.toMatch(/[%\\/?#*]/);
            expect(s.endsWith('.')).toBe(false);
          }
          // Differential: a WHATWG URL parser (what many resource servers use) sees the same path.
          const path = `/${name.segments.slice(1).join('/')}`;
          expect(new URL(`https://h${path}`).pathname).toBe(path);
          expect(text.normalize('NFKC')).toBe(text);
          // Parsing is idempotent.
          expect(parseResource(name.uri)).toEqual(name);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`F2 resource-name property: seed=${SEED} runs=${RUNS} accepted=${accepted}`);
  });

  it('F3 postgres://prod/* does not match postgres://production/x (and prod* is not a pattern)', () => {
    const prod = parsePattern('postgres://prod/*');
    expect(matchesPattern(prod, parseResource('postgres://prod/x'))).toBe(true);
    expect(matchesPattern(prod, parseResource('postgres://prod/x/y/z'))).toBe(true);
    for (const name of [
      'postgres://production/x',
      'postgres://prod-secrets/x',
      'postgres://prod.internal/x',
      'postgres://prod:5432/x',
      'postgres://pro/x',
      'postgres://prod',
      'postgresql://prod/x',
      'postgres://x/prod/x',
    ]) {
      expect(matchesPattern(prod, parseResource(name)), name).toBe(false);
    }
    // Upper case in the host segment is refused outright (a URL parser would fold it).
    expect(() => parseResource('postgres://Prod/x')).toThrow(/lowercase host/);
    for (const bad of [
      'db://prod*',
      'db://*prod',
      'db://pr*od',
      'db://prod/**',
      'db://prod/*.*',
      'db://prod/x*',
      'db://prod/',
      'db://prod//*',
      'db://prod/../*',
      '*://prod/x',
      'db:prod/*',
    ]) {
      expect(() => parsePattern(bad), bad).toThrow(expect.objectContaining({ code: 'CS_CONFIG_INVALID' }));
    }
  });

  it('F3 the catalog resolves look-alike names to uncatalogued (restricted), never to the prefix entry', () => {
    const catalog = ResourceCatalog.from(
      [
        {
          pattern: 'postgres://prod/*',
          sensitivity: 'confidential',
          environment: 'production',
          owner: 'platform',
          boundary: 'acme',
        },
        {
          pattern: 'postgres://staging/*',
          sensitivity: 'internal',
          environment: 'staging',
          owner: 'app',
          boundary: 'acme',
        },
      ],
      'urn:test',
    );
    expect(catalog.resolve(parseResource('postgres://prod/x')).pattern).toBe('postgres://prod/*');
    expect(catalog.resolve(parseResource('postgres://staging/x')).sensitivity).toBe('internal');
    for (const name of [
      'postgres://production/x',
      'postgres://staging-prod/x',
      'postgres://stagingx/x',
      'postgres://prod',
    ]) {
      const facts = catalog.resolve(parseResource(name));
      expect(facts.pattern, name).toBeNull();
      expect(facts.sensitivity).toBe('restricted');
    }
  });

  it('F3 property: prefix look-alikes never match, real children always match, and matching equals a reference model', () => {
    fc.assert(
      fc.property(
        schemeArb,
        hostArb,
        fc.stringMatching(/^[a-z0-9-]{1,8}$/),
        fc.array(segmentArb, { minLength: 1, maxLength: 4 }),
        (scheme, base, suffix, tail) => {
          const pattern = parsePattern(`${scheme}://${base}/*`);
          const lookAlike = `${base}${suffix}`;
          fc.pre(!lookAlike.endsWith('.'));
          // A longer first segment that merely starts with the pattern's literal: never a match.
          expect(matchesPattern(pattern, parseResource(`${scheme}://${lookAlike}/${tail.join('/')}`))).toBe(
            false,
          );
          // A real child: always a match. The bare parent: never.
          expect(matchesPattern(pattern, parseResource(`${scheme}://${base}/${tail.join('/')}`))).toBe(true);
          expect(matchesPattern(pattern, parseResource(`${scheme}://${base}`))).toBe(false);
          // Another scheme that merely starts with this one: never.
          expect(matchesPattern(pattern, parseResource(`${scheme}x://${base}/${tail.join('/')}`))).toBe(
            false,
          );
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    // Differential against the reference model, with patterns derived from names (so matches happen).
    let matches = 0;
    fc.assert(
      fc.property(
        fc.array(segmentArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 5, maxLength: 5 }),
        fc.array(fc.constantFrom('a', 'b', 'A'), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        (nameSegs, ops, noise, trailingStar) => {
          const patternSegs = nameSegs.map((s, i) =>
            ops[i] === 0 ? '*' : ops[i] === 1 ? `${s}${noise[0]}` : s,
          );
          if (trailingStar) patternSegs.push('*');
          let pattern: ResourcePattern;
          try {
            pattern = parsePattern(`db://h/${patternSegs.join('/')}`);
          } catch {
            return; // a generated pattern that is not a pattern
          }
          const name = parseResource(`db://h/${nameSegs.join('/')}`);
          const got = matchesPattern(pattern, name);
          if (got) matches++;
          expect(got).toBe(referenceMatch(pattern.segments, name.segments));
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`F3 wildcard properties: seed=${SEED} runs=${RUNS} x2 reference-matches=${matches}`);
  });
});
