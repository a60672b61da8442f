/**
 * The request digest and its canonicaliser (THREATS.md INV-4, A3, A5, E5, E6).
 * What a reviewer approves is `requestDigest(decisionFields)`: it must not depend on how the
 * JSON text was written, must change with any decision field, must be domain separated from
 * every other hash we make, and hostile input must fail with a coded error, never a crash.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CountersignError,
  canonicalJson,
  checkToolCall,
  jsonDepth,
  MAX_JSON_DEPTH,
  portableSha256Hex,
  REQUEST_DIGEST_TAG,
  requestDigest,
  sha256Hex,
  TOOL_CALL_TAG,
  taggedDigest,
  toolCallDigest,
  useSha256,
} from '../src/index.js';

// In a /u regex a paired surrogate is one code point outside Cs, so this finds only lone halves.
const LONE_SURROGATE = /\p{Cs}/u;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Catches whatever `fn` throws, so a test can assert on the exact kind of error. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, got a value');
}

function expectCoded(fn: () => unknown, code: string): void {
  const error = thrown(fn);
  expect(error).not.toBeInstanceOf(RangeError);
  expect(error).toBeInstanceOf(CountersignError);
  expect((error as CountersignError).code).toBe(code);
}

/** Builds `depth` nested arrays (or objects) without recursion: `[[[...]]]`. */
function nested(depth: number, kind: 'array' | 'object' = 'array'): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = kind === 'array' ? [value] : { k: value };
  return value;
}

// ---------------------------------------------------------------------------------------------
// A serializer that writes the same JSON value in many textual forms: shuffled key order,
// random whitespace, numbers in other notations, characters written as \u escapes.
// ---------------------------------------------------------------------------------------------

interface TextChoices {
  /** Deterministic stream of small integers for the serializer's choices. */
  next(bound: number): number;
}

const WHITESPACE = ['', ' ', '\n', '\t', '\r\n', '  \n\t '];

function ws(c: TextChoices): string {
  return WHITESPACE[c.next(WHITESPACE.length)]!;
}

function writeString(s: string, c: TextChoices): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    const ch = s[i]!;
    if (ch === '"' || ch === '\\' || unit < 0x20 || c.next(4) === 0) {
      // Escaping every UTF-16 unit, surrogate halves included, is valid JSON for the same string.
      const hex = unit.toString(16).padStart(4, '0');
      out += `\\u${c.next(2) === 0 ? hex.toUpperCase() : hex}`;
    } else {
      out += ch;
    }
  }
  return `${out}"`;
}

function writeNumber(n: number, c: TextChoices): string {
  if (Object.is(n, -0)) return ['-0', '-0.0', '-0e0', '0'][c.next(4)]!;
  switch (c.next(4)) {
    case 0:
      return n.toExponential(); // shortest digits that round-trip, e.g. 1e+2
    case 1:
      return Number.isInteger(n) && Math.abs(n) < 1e21 ? `${n}.0` : JSON.stringify(n);
    case 2:
      return n.toExponential().replace('e+', 'E');
    default:
      return JSON.stringify(n);
  }
}

function writeJson(value: Json, c: TextChoices): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return writeNumber(value, c);
  if (typeof value === 'string') return writeString(value, c);
  if (Array.isArray(value)) {
    return `[${ws(c)}${value.map((v) => `${writeJson(v, c)}${ws(c)}`).join(`,${ws(c)}`)}]`;
  }
  const keys = Object.keys(value);
  // Fisher-Yates with the choice stream: any key order.
  for (let i = keys.length - 1; i > 0; i--) {
    const j = c.next(i + 1);
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  const members = keys.map((k) => `${ws(c)}${writeString(k, c)}${ws(c)}:${ws(c)}${writeJson(value[k]!, c)}`);
  return `${ws(c)}{${members.join(`${ws(c)},`)}${ws(c)}}${ws(c)}`;
}

function choices(seed: number): TextChoices {
  let state = seed >>> 0 || 1;
  return {
    next(bound) {
      // xorshift32: cheap and deterministic for a given fast-check seed.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % bound;
    },
  };
}

// JSON values as they arrive on the wire: well-formed strings, finite numbers.
const jsonValue = fc.jsonValue({ maxDepth: 6, stringUnit: 'grapheme' }) as fc.Arbitrary<Json>;

// ---------------------------------------------------------------------------------------------
// Decision-fields-shaped values (what submitAccessRequest digests).
// ---------------------------------------------------------------------------------------------

const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const ident = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);

const decisionFields = fc.record({
  agent: fc.record({ id: ident, owner: ident, boundary: ident, environment: ident }),
  action: ident,
  action_class: fc.constantFrom('read', 'write', 'delete', 'admin', 'export', 'share', 'other'),
  resource: ident.map((s) => `postgres://staging/${s}`),
  resource_facts: fc.record({
    sensitivity: fc.constantFrom('public', 'internal', 'confidential', 'restricted'),
    environment: ident,
    owner: ident,
    boundary: ident,
    audience: ident,
    pattern: fc.option(ident, { nil: null }),
  }),
  intent: fc.record(
    { purpose: text, task_id: ident, ticket: ident },
    { requiredKeys: ['purpose', 'task_id'] },
  ),
  context: fc.record(
    {
      environment: ident,
      on_behalf_of: ident,
      tool_chain: fc.array(
        fc.record(
          { tool: ident, source: fc.constantFrom('trusted', 'untrusted', 'unknown'), summary: text },
          { requiredKeys: ['tool'] },
        ),
        { maxLength: 4 },
      ),
      model_output: text,
    },
    { requiredKeys: [] },
  ),
  ttl_seconds: fc.option(fc.integer({ min: 1, max: 86_400 }), { nil: null }),
  policy_version: fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
}) as fc.Arbitrary<Record<string, Json>>;

type Path = Array<string | number>;

function leafPaths(value: Json, at: Path = [], out: Path[] = []): Path[] {
  if (value !== null && typeof value === 'object') {
    const entries: Array<[string | number, Json]> = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value);
    if (entries.length === 0) out.push(at); // an empty container is a leaf too
    for (const [k, v] of entries) leafPaths(v, [...at, k], out);
  } else {
    out.push(at);
  }
  return out;
}

/** A different JSON value of the same kind (the smallest change a tamperer could make). */
function changed(value: Json, variant: number): Json {
  if (value === null) return variant % 2 === 0 ? false : 'null';
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'number') return variant % 2 === 0 ? value + 1 : -value - 1;
  if (typeof value === 'string') {
    if (value.length === 0) return ' ';
    // Flip the lowest bit of one UTF-16 unit that is not a surrogate (keeps the string well formed).
    for (let k = 0; k < value.length; k++) {
      const i = (variant + k) % value.length;
      const unit = value.charCodeAt(i);
      if (unit < 0xd800 || unit > 0xdfff) {
        return value.slice(0, i) + String.fromCharCode(unit ^ 1) + value.slice(i + 1);
      }
    }
    return `${value}x`;
  }
  if (Array.isArray(value)) return [...value, null];
  return { ...value, added: true };
}

function setAt(root: Json, path: Path, leaf: Json): Json {
  if (path.length === 0) return leaf;
  const copy: Json = structuredClone(root);
  let node = copy as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, Json>;
  node[path[path.length - 1]!] = leaf;
  return copy;
}

function getAt(root: Json, path: Path): Json {
  let node = root;
  for (const key of path) node = (node as Record<string | number, Json>)[key]!;
  return node;
}

describe('requestDigest: what the reviewer approves (INV-4)', () => {
  it('INV-4 digest is the tagged SHA-256 of the RFC 8785 form (known answer, computed independently)', () => {
    const fields = { b: [1, 'two', null], a: { y: true, x: 0.5 } };
    const jcs = '{"a":{"x":0.5,"y":true},"b":[1,"two",null]}';
    expect(canonicalJson(fields)).toBe(jcs);
    const expected = createHash('sha256')
      .update(Buffer.from(`${REQUEST_DIGEST_TAG}${jcs}`, 'utf8'))
      .digest('hex');
    expect(requestDigest(fields)).toBe(`sha256:${expected}`);
    expect(REQUEST_DIGEST_TAG.endsWith('\0')).toBe(true);
  });

  it('INV-4 canonical form follows RFC 8785 for numbers, escapes and UTF-16 key order', () => {
    // RFC 8785 section 3.2.2.3 / appendix B number samples.
    expect(
      canonicalJson({
        // Parsed from text, as the RFC vector is text: the first literal has more digits than a double.
        numbers: JSON.parse(
          '[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0, 1e21, 1e-7]',
        ),
      }),
    ).toBe('{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27,0,1e+21,1e-7]}');
    // RFC 8785 section 3.2.2.2 string sample.
    expect(canonicalJson({ string: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/' })).toBe(
      '{"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
    // RFC 8785 section 3.2.3: keys sorted by UTF-16 code units (the emoji sorts before U+FB33).
    const sorted = canonicalJson({
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    });
    const order = ['\\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) =>
      sorted.indexOf(`"${k}":`),
    );
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('A5 key order, whitespace, number notation and \\u escapes in the JSON text never change the digest', () => {
    fc.assert(
      fc.property(jsonValue, fc.integer(), (value, seed) => {
        const c = choices(seed);
        const textA = writeJson(value, c);
        const textB = writeJson(value, c);
        const parsedA = JSON.parse(textA) as Json;
        const parsedB = JSON.parse(textB) as Json;
        const digest = requestDigest(value);
        expect(requestDigest(parsedA)).toBe(digest);
        expect(requestDigest(parsedB)).toBe(digest);
        expect(canonicalJson(parsedA)).toBe(canonicalJson(value));
      }),
      { numRuns: 1000 },
    );
  });

  it('A5 the canonical form is a fixed point: canonicalJson(JSON.parse(canonicalJson(x))) === canonicalJson(x)', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        const once = canonicalJson(value);
        expect(canonicalJson(JSON.parse(once))).toBe(once);
        expect(once).not.toMatch(/[\n\r\t]/);
      }),
      { numRuns: 500 },
    );
  });

  it('A3 changing any one leaf of the decision fields changes the digest', () => {
    fc.assert(
      fc.property(decisionFields, fc.nat(), fc.nat(), (fields, pick, variant) => {
        const paths = leafPaths(fields);
        const path = paths[pick % paths.length]!;
        const mutated = setAt(fields, path, changed(getAt(fields, path), variant));
        expect(mutated).not.toEqual(fields);
        expect(requestDigest(mutated)).not.toBe(requestDigest(fields));
      }),
      { numRuns: 2000 },
    );
  });

  it('A3 a value of another JSON type with the same text changes the digest ("1" vs 1, null vs "null", absent vs null)', () => {
    const base = { ttl_seconds: 1, ticket: null };
    const digest = requestDigest(base);
    expect(requestDigest({ ttl_seconds: '1', ticket: null })).not.toBe(digest);
    expect(requestDigest({ ttl_seconds: 1, ticket: 'null' })).not.toBe(digest);
    expect(requestDigest({ ttl_seconds: 1 })).not.toBe(digest);
    expect(requestDigest({ ttl_seconds: [1], ticket: null })).not.toBe(digest);
  });

  it('INV-4 domain separation: requestDigest(x) never equals a plain or differently tagged hash of JCS(x)', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        const digest = requestDigest(value);
        expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        const hex = digest.slice('sha256:'.length);
        expect(hex).not.toBe(sha256Hex(canonicalJson(value)));
        expect(hex).not.toBe(taggedDigest('countersign/approve/v1\0', value));
        expect(hex).toBe(taggedDigest(REQUEST_DIGEST_TAG, value));
      }),
      { numRuns: 300 },
    );
  });
});

describe('canonicalJson refuses hostile input with coded errors (E5, E6)', () => {
  it(`E5 depth ${MAX_JSON_DEPTH} is accepted, as arrays and as objects`, () => {
    for (const kind of ['array', 'object'] as const) {
      const value = nested(MAX_JSON_DEPTH, kind);
      expect(jsonDepth(value)).toBe(MAX_JSON_DEPTH);
      expect(() => canonicalJson(value)).not.toThrow();
      expect(requestDigest(value)).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
  });

  it(`E5 depth ${MAX_JSON_DEPTH + 1} throws CS_TOO_DEEP`, () => {
    for (const kind of ['array', 'object'] as const) {
      expectCoded(() => canonicalJson(nested(MAX_JSON_DEPTH + 1, kind)), 'CS_TOO_DEEP');
      expectCoded(() => requestDigest({ intent: nested(MAX_JSON_DEPTH, kind) }), 'CS_TOO_DEEP');
    }
  });

  it('E5 depth 100,000 (built iteratively, and parsed from text) throws CS_TOO_DEEP, never RangeError', () => {
    const deep = nested(100_000);
    expect(jsonDepth(deep, MAX_JSON_DEPTH)).toBeGreaterThan(MAX_JSON_DEPTH);
    expect(jsonDepth(deep)).toBe(100_000);
    expectCoded(() => canonicalJson(deep), 'CS_TOO_DEEP');
    expectCoded(() => requestDigest(deep), 'CS_TOO_DEEP');
    const parsed = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expectCoded(() => canonicalJson(parsed), 'CS_TOO_DEEP');
    expectCoded(() => canonicalJson(nested(100_000, 'object')), 'CS_TOO_DEEP');
    // Deep in one branch, shallow in the others: the deepest branch counts.
    expectCoded(() => canonicalJson({ a: 1, b: [2, 3], c: { d: nested(100_000) } }), 'CS_TOO_DEEP');
  });

  it('E5 a cyclic value is refused as too deep instead of hanging or overflowing', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expectCoded(() => canonicalJson(cyclic), 'CS_TOO_DEEP');
  });

  it('E6 lone surrogates in values or keys throw a coded error', () => {
    const cases: unknown[] = [
      '\ud800',
      '\udc00',
      'a\ud83db',
      'end\ud83d',
      '\ude00start',
      { purpose: 'x\udfff' },
      { '\ud800': 'key' },
      [['ok', '\udbff']],
    ];
    for (const value of cases) expectCoded(() => canonicalJson(value), 'CS_INVALID_REQUEST');
    // A proper pair is fine.
    expect(canonicalJson('\ud83d\ude00')).toBe('"\ud83d\ude00"');
  });

  it('E6 NaN, Infinity, -Infinity and BigInt throw a coded error anywhere in the value', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expectCoded(() => canonicalJson(bad), 'CS_INVALID_REQUEST');
      expectCoded(() => canonicalJson({ ttl_seconds: bad }), 'CS_INVALID_REQUEST');
      expectCoded(() => requestDigest({ a: [1, { b: bad }] }), 'CS_INVALID_REQUEST');
    }
    expectCoded(() => canonicalJson({ n: 10n }), 'CS_INVALID_REQUEST');
    expectCoded(() => canonicalJson(undefined), 'CS_INVALID_REQUEST');
  });

  it('E6 any string, well formed or not, either canonicalizes losslessly or fails with a coded error', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
        let out: string;
        try {
          out = canonicalJson({ purpose: s });
        } catch (error) {
          expect(error).toBeInstanceOf(CountersignError);
          expect((error as CountersignError).code).toBe('CS_INVALID_REQUEST');
          expect(LONE_SURROGATE.test(s)).toBe(true);
          return;
        }
        expect(LONE_SURROGATE.test(s)).toBe(false);
        expect(JSON.parse(out).purpose).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });

  it('E6 -0 and 0 canonicalize alike (JCS), as do 1 and 1.0', () => {
    expect(canonicalJson({ n: -0 })).toBe('{"n":0}');
    expect(requestDigest(JSON.parse('{"n":1.0}'))).toBe(requestDigest({ n: 1 }));
    expect(requestDigest(JSON.parse('{"n":-0}'))).toBe(requestDigest({ n: 0 }));
  });
});

describe('one SHA-256, whichever implementation computes it', () => {
  const nodeSha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

  it('node:crypto and the portable implementation agree on any string, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        expect(nodeSha256(s)).toBe(portableSha256Hex(s));
      }),
      { numRuns: 3000 },
    );
  });

  it('an implementation that disagrees is refused, and the digest never changes with the one in use', () => {
    const before = requestDigest({ action: 'read', resource: 'postgres://a/b' });
    expect(() => useSha256((text) => nodeSha256(`${text} `))).toThrow(TypeError);
    expect(() => useSha256(() => '0'.repeat(64))).toThrow(TypeError);
    useSha256(nodeSha256);
    try {
      expect(requestDigest({ action: 'read', resource: 'postgres://a/b' })).toBe(before);
      expect(sha256Hex('abc')).toBe(portableSha256Hex('abc'));
    } finally {
      useSha256(portableSha256Hex);
    }
  });
});

describe('MCP tool call digest (A3: an approval binds to the exact call)', () => {
  it('is SHA-256 over the tag and JCS of { server, tool, arguments }, whatever the key order', () => {
    const a = toolCallDigest('github', 'create_pr', { title: 'x', repo: 'acme/payments', n: 1 });
    const b = toolCallDigest('github', 'create_pr', { n: 1, repo: 'acme/payments', title: 'x' });
    expect(a).toEqual(b);
    expect(a.canonical).toBe('{"n":1,"repo":"acme/payments","title":"x"}');
    const whole =
      '{"arguments":{"n":1,"repo":"acme/payments","title":"x"},"server":"github","tool":"create_pr"}';
    expect(a.digest).toBe(
      `sha256:${createHash('sha256')
        .update(TOOL_CALL_TAG + whole)
        .digest('hex')}`,
    );
  });

  it('A3 any change of server, tool or any argument changes the digest', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 })),
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.jsonValue({ maxDepth: 2 }),
        (args, key, value) => {
          const before = toolCallDigest('github', 'create_pr', args).digest;
          const changed = { ...args, [key]: value };
          if (canonicalJson(changed) !== canonicalJson(args))
            expect(toolCallDigest('github', 'create_pr', changed).digest).not.toBe(before);
          expect(toolCallDigest('github', 'create_prs', args).digest).not.toBe(before);
          expect(toolCallDigest('gitlab', 'create_pr', args).digest).not.toBe(before);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('checkToolCall refuses non-canonical text and a digest that is not its own, with codes', () => {
    const { canonical, digest } = toolCallDigest('docs', 'search', { query: 'q' });
    expect(() =>
      checkToolCall({ server: 'docs', tool: 'search', arguments: canonical, call_digest: digest }),
    ).not.toThrow();
    const code = (f: () => void) => {
      try {
        f();
      } catch (error) {
        expect(error).toBeInstanceOf(CountersignError);
        return (error as CountersignError).code;
      }
      return null;
    };
    expect(
      code(() =>
        checkToolCall({ server: 'docs', tool: 'search', arguments: '{ "query": "q" }', call_digest: digest }),
      ),
    ).toBe('CS_INVALID_REQUEST');
    expect(
      code(() =>
        checkToolCall({ server: 'docs', tool: 'search', arguments: 'not json', call_digest: digest }),
      ),
    ).toBe('CS_INVALID_REQUEST');
    expect(
      code(() => checkToolCall({ server: 'docs', tool: 'read', arguments: canonical, call_digest: digest })),
    ).toBe('CS_ARGUMENTS_DIGEST_MISMATCH');
    expect(
      code(() =>
        checkToolCall({ server: 'docs', tool: 'search', arguments: '{"query":"r"}', call_digest: digest }),
      ),
    ).toBe('CS_ARGUMENTS_DIGEST_MISMATCH');
  });
});
