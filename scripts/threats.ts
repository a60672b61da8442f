/**
 * THREATS.md R13 traceability: every id of the threat catalogue (A1..L4), the invariants
 * (INV-1..INV-10) and the goals (R1..R13), with the tests whose names start with it or contain
 * it, and the ids no test names. Reads the vendored copy in docs/threats.md so a clean clone
 * has it. `npm run threats` prints a table; `npm run threats -- --json` prints the same as JSON.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
export const THREATS_FILE = join(ROOT, 'docs', 'threats.md');

export interface ThreatId {
  readonly id: string;
  readonly title: string;
}

export interface TestName {
  readonly file: string;
  readonly name: string;
}

export interface Traceability {
  readonly ids: ReadonlyArray<{ id: string; title: string; tests: TestName[] }>;
  readonly uncovered: string[];
  readonly covered: number;
  readonly total: number;
  readonly tests: number;
}

const CATALOGUE_ROW = /^\|\s*([A-L]\d{1,2})\s*\|\s*(.+?)\s*\|/;
const GOAL_ROW = /^\|\s*(R\d{1,2})\s*\|\s*(.+?)\s*\|/;
const INVARIANT = /^-\s*\*\*(INV-\d{1,2})\s+([^*]+?)(?:\*\*|$)/;

/** The ids in THREATS.md, in the order it lists them. Throws when the file has none of a kind. */
export function parseThreatIds(text: string): ThreatId[] {
  const ids: ThreatId[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const m = CATALOGUE_ROW.exec(line) ?? GOAL_ROW.exec(line) ?? INVARIANT.exec(line);
    if (!m || seen.has(m[1]!)) continue;
    seen.add(m[1]!);
    ids.push({ id: m[1]!, title: m[2]!.replace(/\*\*/g, '').trim() });
  }
  for (const kind of [/^[A-L]\d/, /^R\d/, /^INV-/]) {
    if (!ids.some((t) => kind.test(t.id))) throw new Error(`threats: no ${kind.source} ids in the file`);
  }
  return ids;
}

const SKIP_DIRS = new Set(['node_modules', 'dist', '.countersign', 'coverage', '.git']);
// it('...'), test("..."), it.each(...)('...'), it.skipIf(x)(`...`), describe('...'): the first
// string literal after the call.
const TEST_CALL = /\b(?:it|test)(?:\.\w+(?:\([^)]*\))?)*\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g;

function testFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) testFiles(join(dir, entry.name), out);
    } else if (/\.test\.tsx?$/.test(entry.name)) {
      out.push(join(dir, entry.name));
    }
  }
  return out;
}

/** Every test name (it/test) in the repository's *.test.ts files. */
export function collectTestNames(root = ROOT): TestName[] {
  const names: TestName[] = [];
  for (const dir of ['packages', 'apps', 'test']) {
    for (const file of testFiles(join(root, dir))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(TEST_CALL)) {
        names.push({ file: relative(root, file), name: m[2]! });
      }
    }
  }
  return names;
}

function mentions(name: string, id: string): boolean {
  // A1 must not match A10, INV-1 not INV-10, R1 not R13.
  return new RegExp(`(^|[^A-Za-z0-9-])${id}(?![0-9])`).test(name);
}

export function traceability(threatsText: string, tests: TestName[]): Traceability {
  const ids = parseThreatIds(threatsText).map((t) => ({
    ...t,
    tests: tests.filter((n) => mentions(n.name, t.id)),
  }));
  const uncovered = ids.filter((t) => t.tests.length === 0).map((t) => t.id);
  return { ids, uncovered, covered: ids.length - uncovered.length, total: ids.length, tests: tests.length };
}

function main(argv: string[]): void {
  const report = traceability(readFileSync(THREATS_FILE, 'utf8'), collectTestNames());
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  for (const t of report.ids) {
    process.stdout.write(`${t.id.padEnd(7)} ${t.tests.length} ${t.title}\n`);
    for (const n of t.tests) process.stdout.write(`          ${n.file}: ${n.name}\n`);
  }
  process.stdout.write(`\nids with no test: ${report.uncovered.join(' ') || '(none)'}\n`);
  process.stdout.write(
    `coverage: ${report.covered}/${report.total} ids have at least one test (${report.tests} tests scanned)\n`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
