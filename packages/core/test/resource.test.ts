/**
 * Resource names and catalog patterns (THREATS.md F2 path traversal, F3 wildcard/prefix
 * confusion, D3 look-alikes). One strict grammar; what it accepts is already canonical.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CountersignError,
  MAX_RESOURCE_LENGTH,
  matchesPattern,
  parsePattern,
  parseResource,
  type ResourceName,
} from '../src/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CountersignError);
    return (error as CountersignError).code;
  }
  return 'accepted';
}

const EXAMPLES = [
  'postgres://staging/app/orders',
  'secret://kms/prod-signing-key',
  's3://partner-acme/shared/q3.csv',
  'postgres://db1/app/public.invoices',
  'github://acme/payments@main',
  'https://docs.acme.dev/handbook',
  'postgres://prod/billing/invoices',
];

describe('parseResource (F2)', () => {
  it('F2 accepts the example resource names, unchanged, split into segments', () => {
    for (const uri of EXAMPLES) {
      const parsed = parseResource(uri);
      expect(parsed.uri).toBe(uri);
      expect(`${parsed.scheme}://${parsed.segments.join('/')}`).toBe(uri);
    }
    expect(parseResource('postgres://staging/app/orders')).toEqual({
      uri: 'postgres://staging/app/orders',
      scheme: 'postgres',
      segments: ['staging', 'app', 'orders'],
    });
    expect(parseResource('github://acme/payments@main').segments).toEqual(['acme', 'payments@main']);
  });

  const refused: Array<[string, string]> = [
    ['dot-dot segment', 'postgres://staging/app/../orders'],
    ['dot-dot at the end', 'postgres://staging/app/..'],
    ['dot segment', 'postgres://staging/./orders'],
    ['triple dot', 'postgres://staging/.../orders'],
    ['trailing dot', 'postgres://staging/app./orders'],
    ['leading dot', 'postgres://staging/.hidden'],
    ['empty segment', 'postgres://staging//orders'],
    ['trailing slash', 'postgres://staging/app/'],
    ['empty authority', 'postgres:///app/orders'],
    ['no path', 'postgres://'],
    ['percent-encoded dots', 'postgres://staging/%2e%2e/orders'],
    ['percent-encoded slash', 'postgres://staging/app%2forders'],
    ['double encoding', 'postgres://staging/%252e%252e/orders'],
    ['lone percent', 'postgres://staging/100%'],
    ['backslash traversal', 'postgres://staging/app\\..\\orders'],
    ['backslash separator', 'postgres://staging\\app/orders'],
    ['fullwidth dots', 'postgres://staging/\uff0e\uff0e/orders'],
    ['fullwidth solidus', 'postgres://staging/app\uff0forders'],
    ['one-dot leader', 'postgres://staging/\u2024\u2024/orders'],
    ['Cyrillic a (homoglyph)', 'postgres://prod-d\u0430tabase/app'],
    ['Latin-1 letter', 'postgres://staging/caf\u00e9'],
    ['NFD accent', 'postgres://staging/cafe\u0301'],
    ['zero-width space', 'postgres://prod\u200b/app'],
    ['zero-width joiner', 'postgres://staging/ord\u200ders'],
    ['RLO bidi override', 'postgres://staging/\u202eexe.txt'],
    ['BOM', '\ufeffpostgres://staging/app'],
    ['newline', 'postgres://staging/app\n/orders'],
    ['carriage return', 'postgres://staging/app\r'],
    ['tab', 'postgres://staging/\tapp'],
    ['NUL', 'postgres://staging/app\u0000/orders'],
    ['DEL', 'postgres://staging/app\u007f'],
    ['C1 control', 'postgres://staging/app\u0085'],
    ['space', 'postgres://staging/app orders'],
    ['query', 'postgres://staging/app?x=1'],
    ['fragment', 'postgres://staging/app#x'],
    ['wildcard', 'postgres://staging/*'],
    ['partial wildcard', 'postgres://prod*/x'],
    ['uppercase scheme', 'Postgres://staging/app'],
    ['no scheme', '://staging/app'],
    ['no separator', 'postgres:staging/app'],
    ['scheme-relative', '//staging/app'],
    ['empty', ''],
    ['over-long', `postgres://staging/${'a'.repeat(MAX_RESOURCE_LENGTH)}`],
    ['over-long segment', `postgres://staging/${'a'.repeat(129)}`],
    ['too many segments', `postgres://${Array.from({ length: 33 }, () => 'a').join('/')}`],
  ];

  it.each(refused)('F2 refuses %s', (_, name) => {
    expect(codeOf(() => parseResource(name))).toBe('CS_INVALID_RESOURCE');
  });

  it('F2 refuses a value that is not a string with a coded error', () => {
    for (const value of [null, undefined, 42, ['postgres://a/b'], { uri: 'postgres://a/b' }]) {
      expect(codeOf(() => parseResource(value as unknown as string))).toBe('CS_INVALID_RESOURCE');
    }
  });

  it('F2 the length limit is exact: 512 accepted, 513 refused', () => {
    // 'postgres://' (11) + three 128-character segments + separators + a last segment.
    const at = (n: number) => {
      const name = `postgres://${['a', 'b', 'c'].map((c) => c.repeat(128)).join('/')}/${'d'.repeat(n - 11 - 3 * 128 - 3)}`;
      expect(name).toHaveLength(n);
      return name;
    };
    expect(parseResource(at(MAX_RESOURCE_LENGTH)).uri).toHaveLength(MAX_RESOURCE_LENGTH);
    expect(codeOf(() => parseResource(at(MAX_RESOURCE_LENGTH + 1)))).toBe('CS_INVALID_RESOURCE');
  });

  // Names built from a hostile alphabet: dots, slashes, escapes, look-alikes, invisibles.
  const hostilePiece = fc.constantFrom(
    'a',
    'B',
    '0',
    '.',
    '..',
    '/',
    '//',
    '%2e',
    '%2F',
    '\\',
    '\uff0e',
    '\uff0f',
    '\u200b',
    '\u202e',
    '\u0430',
    '-',
    '_',
    '@',
    ':',
    '~',
    '=',
    ',',
    '+',
    '*',
    ' ',
    '\n',
    '?',
    '#',
  );
  const hostileName = fc
    .tuple(
      fc.constantFrom('postgres', 's3', 'secret', 'https', 'Postgres', 'x-1', ''),
      fc.constantFrom('://', ':/', ':///', '://./'),
      fc.array(hostilePiece, { maxLength: 24 }).map((ps) => ps.join('')),
    )
    .map(([s, sep, path]) => s + sep + path);
  const anyName = fc.oneof(
    hostileName,
    fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `postgres://${s}`),
    fc.string({ maxLength: 60 }),
  );

  it('F2 property: every accepted name is its own canonical form and has no dot, empty or non-ASCII segment', () => {
    let accepted = 0;
    fc.assert(
      fc.property(anyName, (name) => {
        let parsed: ResourceName;
        try {
          parsed = parseResource(name);
        } catch (error) {
          expect((error as CountersignError).code).toBe('CS_INVALID_RESOURCE');
          return;
        }
        accepted++;
        expect(parsed.uri).toBe(name);
        expect(`${parsed.scheme}://${parsed.segments.join('/')}`).toBe(name);
        expect(name.length).toBeLessThanOrEqual(MAX_RESOURCE_LENGTH);
        for (const segment of parsed.segments) {
          expect(segment).not.toBe('');
          expect(segment).not.toBe('.');
          expect(segment).not.toBe('..');
          expect(segment.endsWith('.')).toBe(false);
          expect(segment).toMatch(/^[\x21-\x7e]+$/); // printable ASCII only
          expect(segment).not.toMatch(/[%\\/*?# ]/);
        }
        // Parsing is idempotent and NFKC cannot turn it into something else (fullwidth dots, F2).
        expect(parseResource(parsed.uri)).toEqual(parsed);
        expect(name.normalize('NFKC')).toBe(name);
        expect(name.normalize('NFC')).toBe(name);
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  const segment = fc
    .stringMatching(/^[A-Za-z0-9][A-Za-z0-9._@+=,:~-]{0,15}$/)
    .filter((s) => !s.endsWith('.'));
  // The first segment is a host (lowercase, no userinfo); the rest use the full segment set.
  const host = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/);
  const validName = fc
    .tuple(
      fc.stringMatching(/^[a-z][a-z0-9+-]{0,8}$/),
      host,
      fc.array(segment, { minLength: 0, maxLength: 7 }),
    )
    .map(([scheme, first, segs]) => `${scheme}://${[first, ...segs].join('/')}`);

  it('F2 property: names built from the grammar are accepted unchanged', () => {
    fc.assert(
      fc.property(validName, (name) => {
        const parsed = parseResource(name);
        expect(parsed.uri).toBe(name);
        expect(parsed.segments.every((s) => s !== '.' && s !== '..')).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('F2 an accepted name reads the same to a WHATWG URL parser: no userinfo, port or host rewriting in the first segment', () => {
    // THREATS.md F2 asks for a differential test against the matcher a resource server uses
    // for the credential scope. A resource server that parses the scope with `new URL()` sees
    // `postgres://prod@staging/app` as host "staging", while the catalog and policy see a first
    // segment "prod@staging": two readers, two resources. Such names should be refused.
    const differs: string[] = [];
    for (const name of [
      ...EXAMPLES,
      'postgres://prod@staging/app/orders',
      'postgres://staging:5432/app',
      'https://DOCS.acme.dev/handbook',
      'https://0x7f.1/admin',
    ]) {
      let parsed: ResourceName;
      try {
        parsed = parseResource(name);
      } catch {
        continue; // refused: no differential possible
      }
      const url = new URL(name);
      const view = [url.host, ...url.pathname.slice(1).split('/')];
      if (
        url.username !== '' ||
        url.password !== '' ||
        JSON.stringify(view) !== JSON.stringify(parsed.segments)
      )
        differs.push(
          `${name} -> host ${url.host}, user ${JSON.stringify(url.username)}, path ${url.pathname}`,
        );
    }
    expect(differs).toEqual([]);
  });
});

describe('patterns and matching (F3)', () => {
  it('F3 a partial-segment wildcard is not a pattern', () => {
    for (const text of [
      'db://prod*',
      'postgres://prod*/x',
      'postgres://prod/*x',
      'postgres://**',
      'postgres://a/b*c',
    ]) {
      expect(
        codeOf(() => parsePattern(text)),
        text,
      ).toBe('CS_CONFIG_INVALID');
    }
    for (const text of [
      'postgres:/x',
      'postgres',
      '*://x',
      'postgres://a/../b',
      'postgres://a//b',
      'postgres://a/%2e',
    ]) {
      expect(
        codeOf(() => parsePattern(text)),
        text,
      ).toBe('CS_CONFIG_INVALID');
    }
  });

  it('F3 postgres://prod/* does not match postgres://production/x nor postgres://prod itself', () => {
    const prod = parsePattern('postgres://prod/*');
    expect(matchesPattern(prod, parseResource('postgres://production/x'))).toBe(false);
    expect(matchesPattern(prod, parseResource('postgres://prod-secrets/x'))).toBe(false);
    expect(matchesPattern(prod, parseResource('postgres://prod'))).toBe(false);
    expect(matchesPattern(prod, parseResource('postgres://prod/x'))).toBe(true);
    expect(matchesPattern(prod, parseResource('postgres://prod/billing/invoices'))).toBe(true);
    expect(matchesPattern(prod, parseResource('mysql://prod/x'))).toBe(false);
    // A middle wildcard is exactly one segment.
    const mid = parsePattern('postgres://*/app/orders');
    expect(matchesPattern(mid, parseResource('postgres://staging/app/orders'))).toBe(true);
    expect(matchesPattern(mid, parseResource('postgres://staging/x/app/orders'))).toBe(false);
    expect(matchesPattern(mid, parseResource('postgres://staging/app/orders/more'))).toBe(false);
    // A literal pattern matches only itself.
    const exact = parsePattern('secret://kms/prod-signing-key');
    expect(matchesPattern(exact, parseResource('secret://kms/prod-signing-key'))).toBe(true);
    expect(matchesPattern(exact, parseResource('secret://kms/prod-signing-key-2'))).toBe(false);
    expect(matchesPattern(exact, parseResource('secret://kms/prod-signing-key/x'))).toBe(false);
  });

  const seg = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,6}$/).filter((s) => !s.endsWith('.'));

  it('F3 property: s://a/* never matches a name whose first segment merely starts with a', () => {
    fc.assert(
      fc.property(
        seg,
        fc.stringMatching(/^[a-z0-9._@~-]{1,6}$/).filter((s) => !s.endsWith('.')),
        fc.array(seg, { minLength: 1, maxLength: 4 }),
        (a, suffix, rest) => {
          const pattern = parsePattern(`s://h/${a}/*`);
          const name = parseResource(`s://h/${a}${suffix}/${rest.join('/')}`);
          expect(matchesPattern(pattern, name)).toBe(false);
          expect(matchesPattern(pattern, parseResource(`s://h/${a}/${rest.join('/')}`))).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  /** The reference matcher, written from the catalog's documentation. */
  function reference(pattern: string, name: string): boolean {
    const [ps, pp] = pattern.split('://') as [string, string];
    const [ns, np] = name.split('://') as [string, string];
    if (ps !== ns) return false;
    const p = pp.split('/');
    const n = np.split('/');
    const trailing = p[p.length - 1] === '*';
    if (trailing ? n.length < p.length : n.length !== p.length) return false;
    return p.every((s, i) => s === '*' || s === n[i]);
  }

  it('F3 J5 property: matchesPattern agrees with a segment-wise reference matcher', () => {
    const small = fc.constantFrom('a', 'ab', 'a.b', 'b', 'prod', 'production');
    fc.assert(
      fc.property(
        fc.constantFrom('s', 't'),
        fc.array(fc.oneof(small, fc.constant('*')), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('s', 't'),
        fc.array(small, { minLength: 1, maxLength: 5 }),
        (ps, psegs, ns, nsegs) => {
          const patternText = `${ps}://${psegs.join('/')}`;
          const nameText = `${ns}://${nsegs.join('/')}`;
          const got = matchesPattern(parsePattern(patternText), parseResource(nameText));
          expect(got).toBe(reference(patternText, nameText));
          if (got) {
            // Every literal segment equals the name's segment at that index: never a prefix match.
            psegs.forEach((s, i) => {
              if (s !== '*') expect(nsegs[i]).toBe(s);
            });
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
