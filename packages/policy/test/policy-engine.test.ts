/** The Cedar adapter: loading fails closed, evaluation fails closed, versions are content hashes. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAuthorized } from '@cedar-policy/cedar-wasm/nodejs';
import { ACTION_CLASSES, CountersignError, decide, SENSITIVITIES } from '@countersign/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DECISION_CACHE_ENTRIES,
  loadPolicySet,
  type PolicyFile,
  policyEngineFromDirectory,
  policySetVersion,
  readPolicyDirectory,
  validatePolicyDirectory,
} from '../src/index.js';
import { agent, EXAMPLES_DIR, policyInput, SCHEMA_FOR_TESTS, SCHEMA_PATH, SETTINGS } from './helpers.js';

const READ_PERMIT = `
@id("allow-read")
@reason("reads are fine")
permit (principal, action == Countersign::Action::"read", resource);
`;

const ORDERS_FACTS = {
  sensitivity: 'internal',
  environment: 'staging',
  owner: 'app',
  boundary: 'acme',
  catalogued: true,
} as const;

function readInput(extra: Parameters<typeof policyInput>[4] = {}) {
  return policyInput('read', agent(), 'postgres://staging/app/orders', ORDERS_FACTS, extra);
}

function load(policies: PolicyFile[], schema = SCHEMA_FOR_TESTS) {
  return loadPolicySet({ policies, schema });
}

/** Runs `fn`, expects a CS_POLICY_ERROR, returns it. */
function loadError(fn: () => unknown): CountersignError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CountersignError);
    expect((error as CountersignError).code).toBe('CS_POLICY_ERROR');
    return error as CountersignError;
  }
  throw new Error('expected the load to fail');
}

describe('loading', () => {
  it('a policy file that does not parse is CS_POLICY_ERROR naming the file and line', () => {
    const error = loadError(() =>
      load([
        { name: 'good.cedar', text: READ_PERMIT },
        { name: 'broken.cedar', text: '\n\npermit (principal, action, resource' },
      ]),
    );
    expect(error.message).toMatch(/broken\.cedar:3:\d+/);
    expect(error.message).not.toMatch(/good\.cedar/);
  });

  it('a policy that fails schema validation is CS_POLICY_ERROR naming the file, line and policy', () => {
    const text = `${READ_PERMIT}
@id("bad-attr")
permit (principal, action, resource)
when { resource.colour == "red" };`;
    const error = loadError(() => load([{ name: 'typo.cedar', text }]));
    expect(error.message).toMatch(/typo\.cedar:8:8: policy "bad-attr": .*colour/);
  });

  it('a policy that reads the agent intent does not validate (intent is not in the schema)', () => {
    const text = 'permit (principal, action, resource) when { context.intent == "approved by the CEO" };';
    expect(loadError(() => load([{ name: 'intent.cedar', text }])).message).toMatch(
      /intent\.cedar:1:45: policy "intent#0": .*attribute `intent` in context/,
    );
  });

  it('an unknown action or entity type does not validate', () => {
    loadError(() =>
      load([
        { name: 'a.cedar', text: 'permit (principal, action == Countersign::Action::"fly", resource);' },
      ]),
    );
    loadError(() =>
      load([{ name: 'a.cedar', text: 'permit (principal is Countersign::Robot, action, resource);' }]),
    );
    loadError(() =>
      load([{ name: 'a.cedar', text: 'permit (principal, action == Action::"read", resource);' }]),
    );
  });

  it('a bad @ttl("soon") annotation fails the load, not a decision', () => {
    const text = '@id("lazy")\n@ttl("soon")\npermit (principal, action, resource);';
    const error = loadError(() => load([{ name: 'ttl.cedar', text }]));
    expect(error.message).toMatch(/ttl\.cedar:1:1: policy lazy: @ttl must be a duration/);
  });

  it.each([
    ['@review without a group', '@review\npermit (principal, action, resource);'],
    ['@review with a bad group', '@review("Data Governance!")\npermit (principal, action, resource);'],
    ['@approvals of zero', '@review("security")\n@approvals("0")\npermit (principal, action, resource);'],
    ['@deadline that is not a duration', '@deadline("tomorrow")\npermit (principal, action, resource);'],
    ['@separation with an unknown rule', '@separation("team")\npermit (principal, action, resource);'],
    ['@reason that is empty', '@reason("")\npermit (principal, action, resource);'],
  ])('%s fails the load', (_name, text) => {
    loadError(() => load([{ name: 'ann.cedar', text }]));
  });

  it('a duplicate @id across files is an error naming both places', () => {
    const error = loadError(() =>
      load([
        { name: 'a.cedar', text: READ_PERMIT },
        { name: 'b.cedar', text: `\n${READ_PERMIT}` },
      ]),
    );
    expect(error.message).toMatch(/duplicate policy id "allow-read"/);
    expect(error.message).toMatch(/a\.cedar:2:1/);
    expect(error.message).toMatch(/b\.cedar:3:1/);
  });

  it('a duplicate @id in one file is an error', () => {
    loadError(() => load([{ name: 'a.cedar', text: READ_PERMIT + READ_PERMIT }]));
  });

  it('an @id that takes a generated id is an error', () => {
    const text = `@id("b#0")\npermit (principal, action, resource);`;
    loadError(() =>
      load([
        { name: 'a.cedar', text },
        { name: 'b.cedar', text: 'forbid (principal, action, resource);' },
      ]),
    );
  });

  it('an empty @id is an error', () => {
    loadError(() => load([{ name: 'a.cedar', text: '@id("")\npermit (principal, action, resource);' }]));
  });

  it('zero policies is an error (whether no files, or files with only comments)', () => {
    loadError(() => load([]));
    loadError(() => load([{ name: 'empty.cedar', text: '// nothing yet\n' }]));
  });

  it('policy templates are rejected', () => {
    loadError(() => load([{ name: 't.cedar', text: 'permit (principal == ?principal, action, resource);' }]));
  });

  it('the same file name twice is an error', () => {
    const error = loadError(() =>
      load([
        { name: 'a.cedar', text: READ_PERMIT },
        { name: 'a.cedar', text: 'forbid (principal, action, resource);' },
      ]),
    );
    expect(error.message).toMatch(/same file name/);
  });

  it('a schema that does not parse, or lacks the Countersign model, is an error', () => {
    loadError(() => load([{ name: 'a.cedar', text: READ_PERMIT }], 'namespace Countersign {'));
    loadError(() => load([{ name: 'a.cedar', text: READ_PERMIT }], 'entity Agent;'));
    loadError(() =>
      load([{ name: 'a.cedar', text: READ_PERMIT }], SCHEMA_FOR_TESTS.replace('delete, admin', 'admin')),
    );
  });

  it('lists every problem it found, not only the first', () => {
    const error = loadError(() =>
      load([
        { name: 'a.cedar', text: 'permit (principal, action, resource' },
        { name: 'b.cedar', text: '@ttl("soon")\npermit (principal, action, resource);' },
        { name: 'c.cedar', text: 'permit (principal, action, resource) when { resource.nope };' },
      ]),
    );
    const errors = error.details?.errors as string[];
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/^a\.cedar:/);
    expect(errors[1]).toMatch(/^b\.cedar:/);
    expect(errors[2]).toMatch(/^c\.cedar:/);
  });

  it('ids are the @id, else <file>#<index> in source order (also past ten policies)', () => {
    const text = Array.from(
      { length: 12 },
      (_, i) => `// policy ${i}\npermit (principal, action, resource) when { context.risk_score == ${i} };\n`,
    ).join('\n');
    const engine = load([
      { name: 'many.cedar', text },
      { name: 'named.cedar', text: READ_PERMIT },
    ]);
    expect(engine.policies.map((p) => p.id)).toEqual([
      ...Array.from({ length: 12 }, (_, i) => `many#${i}`),
      'allow-read',
    ]);
    engine.policies.slice(0, 12).forEach((p, i) => {
      expect(p.text).toContain(`context.risk_score == ${i} }`);
    });
    // The generated id is what Cedar reports as determining.
    const evaluation = engine.evaluate(
      policyInput('write', agent(), 'postgres://x/y', ORDERS_FACTS, { risk_score: 10 }),
    );
    expect(evaluation).toMatchObject({
      kind: 'evaluated',
      decision: 'allow',
      determining: [{ id: 'many#10' }],
    });
  });

  it('annotations and effect come from the policy', () => {
    const engine = load([
      {
        name: 'x.cedar',
        text: '@id("p")\n@review("security")\n@approvals("2")\n@custom\npermit (principal, action, resource);',
      },
    ]);
    expect(engine.policies[0]).toMatchObject({
      id: 'p',
      file: 'x.cedar',
      index: 0,
      effect: 'permit',
      annotations: { id: 'p', review: 'security', approvals: '2', custom: '' },
    });
  });
});

describe('version', () => {
  const files: PolicyFile[] = [
    { name: 'a.cedar', text: READ_PERMIT },
    { name: 'b.cedar', text: 'forbid (principal, action == Countersign::Action::"delete", resource);' },
    { name: 'c.cedar', text: 'permit (principal, action == Countersign::Action::"share", resource);' },
  ];
  const version = load(files).version;

  it('is sha256: and 64 lowercase hex digits', () => {
    expect(version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(policySetVersion(files, SCHEMA_FOR_TESTS)).toBe(version);
  });

  it('does not depend on the order the files are given in', () => {
    expect(load([files[2]!, files[0]!, files[1]!]).version).toBe(version);
    expect(load([...files].reverse()).version).toBe(version);
  });

  it('changes when any byte changes: a policy, a file name, or the schema', () => {
    const changed = new Set([
      version,
      load([{ ...files[0]!, text: `${files[0]!.text} ` }, files[1]!, files[2]!]).version,
      load([{ ...files[0]!, name: 'a2.cedar' }, files[1]!, files[2]!]).version,
      load(files, `${SCHEMA_FOR_TESTS}\n`).version,
      // Moving text between files changes the version even though the concatenation is equal.
      load([
        { name: 'a.cedar', text: READ_PERMIT + files[1]!.text },
        { name: 'b.cedar', text: '' },
        files[2]!,
      ]).version,
    ]);
    expect(changed.size).toBe(5);
  });

  it('the example set loaded twice has one version', () => {
    expect(policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH).version).toBe(
      policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH).version,
    );
  });
});

describe('evaluation fails closed', () => {
  const OVERFLOW_FORBID = `
@id("overflow-forbid")
@reason("risky enough to forbid")
forbid (principal, action, resource)
when { context.risk_score * 9223372036854775807 > 0 };
`;

  it('J2 an erroring forbid denies instead of letting the permit through', () => {
    const policies = [{ name: 'j2.cedar', text: READ_PERMIT + OVERFLOW_FORBID }];
    const engine = load(policies);
    const input = readInput({ risk_score: 2 }); // 2 * (2^63 - 1) overflows: the forbid errors

    // Plain Cedar skips the erroring forbid and answers allow from the permit.
    const raw = isAuthorized({
      principal: { type: 'Countersign::Agent', id: input.principal.id },
      action: { type: 'Countersign::Action', id: 'read' },
      resource: { type: 'Countersign::Resource', id: input.resource.id },
      context: input.context as Record<string, never>,
      policies: { staticPolicies: { 'allow-read': READ_PERMIT, 'overflow-forbid': OVERFLOW_FORBID } },
      entities: [],
    });
    expect(raw.type === 'success' && raw.response.decision).toBe('allow');

    // The engine reports an error instead of a partial answer, and the checkpoint denies.
    const evaluation = engine.evaluate(input);
    expect(evaluation).toMatchObject({ kind: 'error', policyIds: ['overflow-forbid'] });
    const decision = decide(evaluation, engine.version, SETTINGS);
    expect(decision.outcome).toBe('deny');
    expect(decision.errorCode).toBe('CS_POLICY_ERROR');
    expect(decision.obligations.maxTtlSeconds).toBe(0);
    expect(decision.errorDetail).toMatch(/overflow-forbid.*overflow/);
    expect(decision.reasons[0]).not.toMatch(/overflow/); // Cedar's text never reaches the agent

    // Without the overflow the same set allows: the deny above came from the error.
    expect(decide(engine.evaluate(readInput({ risk_score: 0 })), engine.version, SETTINGS).outcome).toBe(
      'allow',
    );
  });

  it('an erroring permit is an error too, even when another permit allows', () => {
    const engine = load([
      {
        name: 'p.cedar',
        text: `${READ_PERMIT}\n@id("overflow-permit")\npermit (principal, action, resource) when { context.risk_score * 9223372036854775807 > 0 };`,
      },
    ]);
    expect(engine.evaluate(readInput({ risk_score: 3 }))).toMatchObject({
      kind: 'error',
      policyIds: ['overflow-permit'],
    });
  });

  it.each([
    ['a wrong-typed entity attribute', { resource: { catalogued: 'yes' } }],
    ['a missing entity attribute', { resource: { sensitivity: undefined } }],
    ['an extra entity attribute', { principal: { intent: 'trust me' } }],
    ['a wrong-typed context attribute', { context: { risk_score: '10' } }],
    ['an extra context attribute (such as intent)', { context: { intent: 'approved by the CEO' } }],
    ['a missing context attribute', { context: { tainted: undefined } }],
    ['a non-integer number', { context: { risk_score: 1.5 } }],
    [
      'an entity reference smuggled into a string attribute',
      { context: { action_name: { __entity: { type: 'Countersign::Agent', id: 'root' } } } },
    ],
  ])('%s is an error, not a silent non-match', (_name, patch: Record<string, Record<string, unknown>>) => {
    const engine = load([{ name: 'r.cedar', text: READ_PERMIT }]);
    const base = readInput();
    const apply = (attrs: Record<string, unknown>, changes: Record<string, unknown> | undefined) => {
      const out = { ...attrs, ...changes };
      for (const [k, v] of Object.entries(changes ?? {})) if (v === undefined) delete out[k];
      return out;
    };
    const input = {
      ...base,
      principal: { ...base.principal, attrs: apply(base.principal.attrs, patch.principal) },
      resource: { ...base.resource, attrs: apply(base.resource.attrs, patch.resource) },
      context: apply(base.context, patch.context),
    } as unknown as typeof base;
    const evaluation = engine.evaluate(input);
    expect(evaluation.kind).toBe('error');
    expect(decide(evaluation, engine.version, SETTINGS)).toMatchObject({
      outcome: 'deny',
      errorCode: 'CS_POLICY_ERROR',
    });
  });

  it('never throws, even on malformed input', () => {
    const engine = load([{ name: 'r.cedar', text: READ_PERMIT }]);
    const bad: unknown[] = [
      null,
      {},
      { ...readInput(), principal: null },
      { ...readInput(), action: 'fly' },
      { ...readInput(), action: '__proto__' },
      { ...readInput(), context: 'nope' },
      { ...readInput(), resource: { id: 42, attrs: [] } },
    ];
    for (const input of bad) {
      const evaluation = engine.evaluate(input as never);
      expect(evaluation.kind).toBe('error');
    }
  });
});

describe('several engines in one process', () => {
  it('do not share preparsed sets, even with identical content', () => {
    const permits = load([{ name: 'p.cedar', text: READ_PERMIT }]);
    const forbids = load([
      { name: 'p.cedar', text: READ_PERMIT },
      { name: 'f.cedar', text: '@id("no")\nforbid (principal, action, resource);' },
    ]);
    const permitsAgain = load([{ name: 'p.cedar', text: READ_PERMIT }]);
    for (let i = 0; i < 3; i++) {
      expect(permits.evaluate(readInput())).toMatchObject({ kind: 'evaluated', decision: 'allow' });
      expect(forbids.evaluate(readInput())).toMatchObject({ kind: 'evaluated', decision: 'deny' });
      expect(permitsAgain.evaluate(readInput())).toMatchObject({ kind: 'evaluated', decision: 'allow' });
    }
  });
});

describe('splitting by action', () => {
  const split = policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH);
  const single = policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH, { splitByAction: false });
  const word = fc.constantFrom(
    'app',
    'billing',
    'security',
    'acme',
    'partner-acme',
    'production',
    'staging',
    'unknown',
  );

  it('gives the same evaluation as one set for every input', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ACTION_CLASSES),
        fc.record({ owner: word, boundary: word, environment: word, trust_tier: word }),
        fc.record({
          sensitivity: fc.constantFrom(...SENSITIVITIES),
          environment: word,
          owner: word,
          boundary: word,
          catalogued: fc.boolean(),
        }),
        fc.constantFrom('postgres://a/b', 'secret://kms/k', 's3://b/k'),
        fc.boolean(),
        fc.boolean(),
        (action, who, facts, uri, tainted, cross) => {
          const input = policyInput(action, { id: 'agent-x', ...who }, uri, facts, {
            tainted,
            context: { cross_boundary: cross },
          });
          expect(split.evaluate(input)).toEqual(single.evaluate(input));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps a policy scoped to an action group or unconstrained in every set', () => {
    const engine = load([
      {
        name: 'all.cedar',
        text: '@id("any")\nforbid (principal, action, resource) when { context.tainted };',
      },
      {
        name: 'some.cedar',
        text: '@id("rw")\npermit (principal, action in [Countersign::Action::"read", Countersign::Action::"write"], resource);',
      },
    ]);
    for (const action of ACTION_CLASSES) {
      const tainted = engine.evaluate(
        policyInput(action, agent(), 'postgres://a/b', ORDERS_FACTS, { tainted: true }),
      );
      expect(tainted).toMatchObject({ kind: 'evaluated', decision: 'deny', determining: [{ id: 'any' }] });
      const clean = engine.evaluate(policyInput(action, agent(), 'postgres://a/b', ORDERS_FACTS));
      expect(clean).toMatchObject({ decision: action === 'read' || action === 'write' ? 'allow' : 'deny' });
    }
  });
});

describe('decision cache', () => {
  const word = fc.constantFrom('app', 'billing', 'security', 'acme', 'production', 'staging');
  const inputs = fc
    .tuple(
      fc.constantFrom(...ACTION_CLASSES),
      fc.record({ owner: word, boundary: word, environment: word, trust_tier: word }),
      fc.record({
        sensitivity: fc.constantFrom(...SENSITIVITIES),
        environment: word,
        owner: word,
        boundary: word,
        catalogued: fc.boolean(),
      }),
      fc.constantFrom('postgres://a/b', 'secret://kms/k', 's3://b/k'),
      fc.boolean(),
      fc.boolean(),
    )
    .map(([action, who, facts, uri, tainted, cross]) =>
      policyInput(action, { id: 'agent-x', ...who }, uri, facts, {
        tainted,
        context: { cross_boundary: cross },
      }),
    );

  it('J5 a remembered answer is the answer a fresh engine gives, for every input, asked twice', () => {
    const cached = policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH);
    fc.assert(
      fc.property(inputs, (input) => {
        const fresh = policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH);
        const first = cached.evaluate(input);
        const again = cached.evaluate(structuredClone(input));
        expect(again).toEqual(first);
        expect(first).toEqual(fresh.evaluate(input));
      }),
      { numRuns: 150 },
    );
    expect(cached.cacheStats().hits).toBeGreaterThanOrEqual(150);
  });

  it('answers a repeated input from memory, and any changed attribute is a new entry', () => {
    const engine = policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH);
    const input = readInput();
    const first = engine.evaluate(input);
    expect(engine.evaluate(readInput())).toBe(first);
    expect(engine.cacheStats()).toMatchObject({ hits: 1, misses: 1, entries: 1 });
    const tainted = engine.evaluate(readInput({ tainted: true }));
    expect(engine.cacheStats()).toMatchObject({ hits: 1, misses: 2, entries: 2 });
    expect(tainted).not.toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('never remembers an error', () => {
    const engine = load([
      {
        name: 'p.cedar',
        text: `${READ_PERMIT}\n@id("boom")\nforbid (principal, action, resource) when { context.risk_score * 9223372036854775807 > 0 };`,
      },
    ]);
    const bad = readInput({ risk_score: 2 }); // overflows: the forbid errors
    const a = engine.evaluate(bad);
    const b = engine.evaluate(bad);
    expect(a.kind).toBe('error');
    expect(b.kind).toBe('error');
    expect(engine.cacheStats()).toMatchObject({ hits: 0, entries: 0 });
  });

  it(`holds at most ${DECISION_CACHE_ENTRIES} entries`, () => {
    const engine = load([{ name: 'p.cedar', text: READ_PERMIT }]);
    for (let i = 0; i < DECISION_CACHE_ENTRIES + 50; i++) {
      engine.evaluate(policyInput('read', agent(), `postgres://a/t${i}`, ORDERS_FACTS));
    }
    expect(engine.cacheStats().entries).toBe(DECISION_CACHE_ENTRIES);
  });
});

describe('policy directories', () => {
  const dirs: string[] = [];
  const tempDir = (files: Record<string, string>): string => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-policy-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('validates the examples', () => {
    const result = validatePolicyDirectory(EXAMPLES_DIR, SCHEMA_PATH);
    expect(result).toEqual({
      ok: true,
      version: policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH).version,
      policyCount: 13,
    });
  });

  it('reads only *.cedar files directly in the directory, sorted by name', () => {
    const dir = tempDir({
      'b.cedar': READ_PERMIT,
      'a.cedar': '@id("x")\nforbid (principal, action == Countersign::Action::"delete", resource);',
      'notes.txt': 'not a policy',
      '.hidden.cedar': 'not a policy either',
    });
    mkdirSync(join(dir, 'nested.cedar'));
    writeFileSync(join(dir, 'schema.cedarschema'), SCHEMA_FOR_TESTS);
    const files = readPolicyDirectory(dir, join(dir, 'schema.cedarschema'));
    expect(files.policies.map((f) => f.name)).toEqual(['a.cedar', 'b.cedar']);
    const result = validatePolicyDirectory(dir, join(dir, 'schema.cedarschema'));
    expect(result).toMatchObject({ ok: true, policyCount: 2 });
  });

  it('reports every problem for the CLI', () => {
    const dir = tempDir({
      'a.cedar': 'permit (principal, action, resource',
      'b.cedar': '@ttl("soon")\npermit (principal, action, resource);',
      'schema.cedarschema': SCHEMA_FOR_TESTS,
    });
    const result = validatePolicyDirectory(dir, join(dir, 'schema.cedarschema'));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors).toHaveLength(2);
      expect(result.errors[0]).toMatch(/^a\.cedar:1:\d+: /);
      expect(result.errors[1]).toMatch(/^b\.cedar:1:1: policy b#0: @ttl/);
    }
  });

  it('a missing directory or schema is CS_POLICY_ERROR', () => {
    loadError(() => policyEngineFromDirectory(join(tmpdir(), 'countersign-no-such-dir'), SCHEMA_PATH));
    loadError(() => policyEngineFromDirectory(EXAMPLES_DIR, join(tmpdir(), 'no-such-schema')));
    expect(validatePolicyDirectory(EXAMPLES_DIR, join(tmpdir(), 'no-such-schema')).ok).toBe(false);
  });
});
