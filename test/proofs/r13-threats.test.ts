/**
 * THREATS.md R13: `npm run threats` maps every catalogue id, invariant and goal of the vendored
 * docs/threats.md to the tests named after it, and names the ids with none.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectTestNames, parseThreatIds, ROOT, THREATS_FILE, traceability } from '../../scripts/threats.js';

describe('R13 traceability', () => {
  it('R13 the vendored docs/threats.md parses: 88 catalogue ids, INV-1..INV-10, R1..R13', () => {
    const ids = parseThreatIds(readFileSync(THREATS_FILE, 'utf8')).map((t) => t.id);
    const catalogue = ids.filter((id) => /^[A-L]\d+$/.test(id));
    // THREATS.md states its own total: "= **88 cases**".
    const stated = /\*\*(\d+) cases\*\*/.exec(readFileSync(THREATS_FILE, 'utf8'));
    expect(catalogue).toHaveLength(Number(stated?.[1]));
    expect(catalogue).toHaveLength(88);
    expect(ids.filter((id) => id.startsWith('INV-'))).toEqual(
      Array.from({ length: 10 }, (_, i) => `INV-${i + 1}`),
    );
    expect(ids.filter((id) => /^R\d+$/.test(id))).toEqual(Array.from({ length: 13 }, (_, i) => `R${i + 1}`));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('R13 an id matches whole: A1 is not A10, INV-1 is not INV-10', () => {
    const text =
      '| A1 | x | y | z |\n| A10 | x | y | z |\n- **INV-1 One.** a\n- **INV-10 Ten.** b\n| R1 | g | c |';
    const report = traceability(text, [
      { file: 'f', name: 'A10 something' },
      { file: 'f', name: 'INV-10 other' },
      { file: 'f', name: 'concurrent: A1, R1' },
    ]);
    const tests = Object.fromEntries(report.ids.map((t) => [t.id, t.tests.map((n) => n.name)]));
    expect(tests).toEqual({
      A1: ['concurrent: A1, R1'],
      A10: ['A10 something'],
      'INV-1': [],
      'INV-10': ['INV-10 other'],
      R1: ['concurrent: A1, R1'],
    });
    expect(report.uncovered).toEqual(['INV-1']);
  });

  it('R13 `npm run threats` lists every id with its tests and the ids with none, and prints the coverage', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts', 'threats.ts'), '--json'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ReturnType<typeof traceability>;
    expect(report.total).toBe(111);
    expect(report.covered + report.uncovered.length).toBe(report.total);
    // This very file names R13, so R13 is covered.
    expect(report.ids.find((t) => t.id === 'R13')?.tests.map((t) => t.file)).toContain(
      join('test', 'proofs', 'r13-threats.test.ts'),
    );
    expect(report.tests).toBe(collectTestNames().length);
    const text = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'threats.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(text.stdout).toMatch(/^coverage: \d+\/111 ids have at least one test/m);
    expect(text.stdout).toMatch(/^ids with no test: /m);
    console.log(
      JSON.stringify({
        goal: 'R13',
        ids: report.total,
        covered: report.covered,
        uncovered: report.uncovered,
        tests: report.tests,
      }),
    );
  });
});
