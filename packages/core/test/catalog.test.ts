/**
 * The resource catalog: operator-owned facts matched by pattern; the most specific pattern
 * wins; anything unmatched is restricted and uncatalogued; a bad catalog refuses to load.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  type CatalogEntryInput,
  CountersignError,
  parseResource,
  ResourceCatalog,
  UNCATALOGUED,
} from '../src/index.js';

const EXAMPLE_CATALOG = new URL('../../../examples/catalog.yaml', import.meta.url);
const entries = (parseYaml(readFileSync(EXAMPLE_CATALOG, 'utf8')) as { resources: CatalogEntryInput[] })
  .resources;
const DEFAULT_AUDIENCE = 'urn:countersign:uncatalogued';

const resolve = (catalog: ResourceCatalog, uri: string) => catalog.resolve(parseResource(uri));

function entry(pattern: string, overrides: Partial<CatalogEntryInput> = {}): CatalogEntryInput {
  return {
    pattern,
    sensitivity: 'internal',
    environment: 'staging',
    owner: 'app',
    boundary: 'acme',
    ...overrides,
  };
}

function loadError(list: readonly unknown[]): string {
  try {
    ResourceCatalog.from(list as CatalogEntryInput[], DEFAULT_AUDIENCE);
  } catch (error) {
    expect(error).toBeInstanceOf(CountersignError);
    return (error as CountersignError).code;
  }
  return 'loaded';
}

describe('the example catalog', () => {
  const catalog = ResourceCatalog.from(entries, DEFAULT_AUDIENCE);

  it('loads every example entry', () => {
    expect(catalog.size).toBe(entries.length);
    expect(entries.length).toBeGreaterThanOrEqual(8);
  });

  it('the most specific pattern wins', () => {
    expect(resolve(catalog, 'postgres://prod/billing/invoices')).toMatchObject({
      pattern: 'postgres://prod/billing/*',
      owner: 'billing',
      sensitivity: 'confidential',
      audience: 'postgres://prod/billing',
    });
    expect(resolve(catalog, 'postgres://prod/platform/nodes')).toMatchObject({
      pattern: 'postgres://prod/*',
      owner: 'platform',
    });
    // prod/billing itself has one segment under prod: only prod/* matches it.
    expect(resolve(catalog, 'postgres://prod/billing')).toMatchObject({ pattern: 'postgres://prod/*' });
    expect(resolve(catalog, 'postgres://staging/app/orders')).toMatchObject({
      pattern: 'postgres://staging/app/*',
      audience: 'postgres://staging/app',
    });
    expect(resolve(catalog, 'postgres://staging/other/x')).toMatchObject({ pattern: 'postgres://staging/*' });
    expect(resolve(catalog, 's3://partner-acme/shared/q3.csv')).toMatchObject({
      boundary: 'partner-acme',
      owner: 'partnerships',
    });
    expect(resolve(catalog, 'secret://kms/prod-signing-key')).toMatchObject({
      sensitivity: 'restricted',
      owner: 'security',
    });
  });

  it('F3 unmatched names are restricted and uncatalogued, with the default audience', () => {
    for (const uri of [
      'postgres://production/x', // not prod/*: no prefix matching
      'postgres://db1/app/public.invoices',
      'gitlab://acme/payments@main',
      's3://partner-acme/private/x', // only shared/* is catalogued
      's3://partner-acme-evil/shared/x',
      'postgres://prod', // prod/* needs at least one segment below prod
      'secret://kms', // likewise
    ]) {
      expect(resolve(catalog, uri), uri).toEqual({ ...UNCATALOGUED, audience: DEFAULT_AUDIENCE });
    }
    expect(UNCATALOGUED).toMatchObject({ sensitivity: 'restricted', pattern: null });
  });

  it('the entry order in the file never changes what a name resolves to', () => {
    const names = [
      'postgres://prod/billing/invoices',
      'postgres://prod/billing/a/b',
      'postgres://prod/x',
      'postgres://staging/app/orders',
      'postgres://staging/app',
      'postgres://staging/x/y',
      'secret://kms/k',
      's3://acme-exports/q3.csv',
      's3://partner-acme/shared/q3.csv',
      'https://docs.acme.dev/handbook',
      'postgres://other/x',
    ];
    const expected = names.map((n) => resolve(catalog, n));
    fc.assert(
      fc.property(
        fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length }),
        (order) => {
          const shuffled = ResourceCatalog.from(order, DEFAULT_AUDIENCE);
          expect(names.map((n) => resolve(shuffled, n))).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('catalog rules', () => {
  it('more literal segments beat fewer; then more segments; the tie is broken by pattern text, not file order', () => {
    const list = [
      entry('s3://*/*', { owner: 'any' }),
      entry('s3://bucket/*', { owner: 'bucket' }),
      entry('s3://bucket/reports/*', { owner: 'reports' }),
      entry('s3://bucket/reports/q3.csv', { owner: 'exact' }),
      entry('s3://*/reports/*', { owner: 'any-reports' }),
    ];
    for (const order of [list, [...list].reverse()]) {
      const catalog = ResourceCatalog.from(order, DEFAULT_AUDIENCE);
      expect(resolve(catalog, 's3://bucket/reports/q3.csv').owner).toBe('exact');
      expect(resolve(catalog, 's3://bucket/reports/q4.csv').owner).toBe('reports');
      expect(resolve(catalog, 's3://bucket/other.csv').owner).toBe('bucket');
      expect(resolve(catalog, 's3://other/reports/x').owner).toBe('any-reports');
      expect(resolve(catalog, 's3://other/x').owner).toBe('any');
    }
    // A true tie (one literal segment, two segments each): same winner whatever the file order.
    const tie = [entry('s3://bucket/*', { owner: 'bucket' }), entry('s3://*/x', { owner: 'x' })];
    const winners = [tie, [...tie].reverse()].map(
      (order) => resolve(ResourceCatalog.from(order, DEFAULT_AUDIENCE), 's3://bucket/x').owner,
    );
    expect(winners[0]).toBe(winners[1]);
  });

  it('the audience defaults to the literal prefix of the pattern', () => {
    const catalog = ResourceCatalog.from([entry('s3://bucket/reports/*')], DEFAULT_AUDIENCE);
    expect(resolve(catalog, 's3://bucket/reports/x').audience).toBe('s3://bucket/reports');
  });

  it('an empty catalog treats everything as restricted', () => {
    const catalog = ResourceCatalog.from([], DEFAULT_AUDIENCE);
    expect(resolve(catalog, 'postgres://staging/app/orders')).toEqual({
      ...UNCATALOGUED,
      audience: DEFAULT_AUDIENCE,
    });
  });

  const bad: Array<[string, unknown[]]> = [
    ['an unknown sensitivity', [entry('s3://a/*', { sensitivity: 'secret' })]],
    ['a capitalised sensitivity', [entry('s3://a/*', { sensitivity: 'Restricted' })]],
    ['an empty environment', [entry('s3://a/*', { environment: '' })]],
    ['an empty owner', [entry('s3://a/*', { owner: '' })]],
    ['a missing boundary', [{ pattern: 's3://a/*', sensitivity: 'internal', environment: 'x', owner: 'y' }]],
    ['a missing pattern', [{ sensitivity: 'internal', environment: 'x', owner: 'y', boundary: 'z' }]],
    ['a duplicate pattern', [entry('s3://a/*'), entry('s3://a/*', { owner: 'other' })]],
    ['a partial wildcard', [entry('postgres://prod*')]],
    ['a dot segment', [entry('postgres://prod/../x')]],
    ['an empty segment', [entry('postgres://prod//x')]],
    ['a percent escape', [entry('postgres://prod/%2e%2e/*')]],
    ['no scheme', [entry('prod/*')]],
    ['a non-ASCII pattern', [entry('postgres://pr\u043ed/*')]],
    ['a good entry followed by a bad one', [entry('s3://a/*'), entry('s3://b/*', { sensitivity: 'top' })]],
  ];

  it.each(bad)('a catalog with %s refuses to load with CS_CONFIG_INVALID', (_, list) => {
    expect(loadError(list)).toBe('CS_CONFIG_INVALID');
  });
});
