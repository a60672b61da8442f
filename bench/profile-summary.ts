/**
 * Summarises V8 .cpuprofile files (from `BENCH_PROFILE=1 npm run bench`): self time by
 * category (package or source area) and the top functions, so "where the time goes" is a
 * measurement, not a guess. Usage: node --import tsx bench/profile-summary.ts [file|dir] [--top N]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO } from './lib/server.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Source area of a frame: a package under node_modules, a workspace package, node internals, or V8's own. */
export function category(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(program)') return '(program: native, not JS)';
    return `(native) ${functionName || 'anonymous'}`;
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return pkg;
  }
  const ws = url.match(/\/packages\/([^/]+)\/src\/(.*)$/);
  if (ws) return `@countersign/${ws[1]} ${ws[2]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url.replace(`file://${REPO}/`, '');
}

export function summarise(profile: Profile, top = 30): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const cat = category(node.callFrame);
    cats.set(cat, (cats.get(cat) ?? 0) + us);
    const fn = `${node.callFrame.functionName || '(anonymous)'}  [${cat}:${node.callFrame.lineNumber + 1}]`;
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const idle = cats.get('(idle)') ?? 0;
  const busy = total - idle;
  const lines: string[] = [];
  lines.push(
    `profile: ${(total / 1e6).toFixed(2)} s sampled, busy ${(busy / 1e6).toFixed(2)} s (${((busy / total) * 100).toFixed(1)}%), idle ${(idle / 1e6).toFixed(2)} s`,
  );
  lines.push('\nmain-thread time by component (% of busy; a sample goes to the innermost recognised frame):');
  for (const [name, us] of components(profile).filter(([n]) => n !== '(idle)'))
    lines.push(
      `  ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`,
    );
  lines.push('\nself time by category (% of busy):');
  for (const [cat, us] of [...cats]
    .filter(([c]) => c !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    lines.push(
      `  ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${cat}`,
    );
  lines.push('\ntop functions by self time (% of busy):');
  for (const [fn, us] of [...fns]
    .filter(([f]) => !f.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    lines.push(
      `  ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${fn}`,
    );
  return lines.join('\n');
}

/**
 * Components: each sample goes to the first frame, from the leaf up, that a rule recognises,
 * so native calls land with their caller (better-sqlite3's `run` under the store is SQLite;
 * the WebCrypto job's `run` under jose is Ed25519) and library code with its purpose.
 */
const RULES: Array<[RegExp, string]> = [
  [/^\(garbage collector\)$/, 'GC'],
  [/^\(program\)$/, 'V8 / native, unattributed'],
  [/^\(idle\)$/, '(idle)'],
  [/node:inspector/, 'bench instrumentation (profiler stop)'],
  [/wasm:|@cedar-policy|policy\/src\//, 'Cedar (wasm + marshalling)'],
  // profiler-hook.mjs wraps better-sqlite3's calls when BENCH_PROFILE is set: its frames are SQLite time.
  [
    /better-sqlite3|store\/src\/sqlite\.ts|profiler-hook/,
    'SQLite (better-sqlite3: statements, BEGIN/COMMIT+fsync)',
  ],
  [/\/kysely\//, 'Kysely (build + compile per query)'],
  [/store\/src\/sql-store\.ts/, 'store row mapping (JS)'],
  [/\/jose\/|node:internal\/crypto\/(webcrypto|cfrg|util|keys|webidl)/, 'Ed25519 via jose / WebCrypto'],
  [/node:internal\/crypto\/random/, 'ids (randomBytes)'],
  [
    /\/canonicalize\/|@noble\/hashes|core\/src\/digest\.ts/,
    'JCS canonicalize + SHA-256 (digests, audit chain)',
  ],
  [/\/zod\//, 'zod'],
  [/@humanwhocodes\/momoa|server\/src\/json-body\.ts/, 'momoa JSON checks'],
  [/\/prom-client\/|server\/src\/metrics\.ts/, 'metrics (prom-client)'],
  [/\/pino/, 'pino'],
  [/core\/src\/risk\.ts|core\/src\/text\.ts/, 'risk'],
  [/core\/src\/(catalog|resource|action)\.ts/, 'catalog + resource/action parsing'],
  [/core\/src\/audit\.ts/, 'audit chain (JS)'],
  [/core\/src\/checkpoint\.ts/, 'checkpoint (decide)'],
  [
    /\/hono\/|@hono\/node-server|node:_http|node:net|node:internal\/(deps\/undici|webstreams|streams|http|abort_controller|event_target|url|stream_base)|node:stream/,
    'HTTP: node:http + @hono/node-server + Hono + Request/Response',
  ],
  [/packages\/[a-z]+\/src\//, 'Countersign JS, other'],
  [/^node:/, 'node internals, other'],
];

export function components(profile: Profile): Array<[string, number]> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const bucketOf = new Map<number, string>();
  const classify = (id: number): string => {
    const cached = bucketOf.get(id);
    if (cached) return cached;
    const frame = byId.get(id)!.callFrame;
    const key = frame.url === '' ? frame.functionName : frame.url;
    let bucket: string | undefined;
    for (const [re, name] of RULES)
      if (re.test(key)) {
        bucket = name;
        break;
      }
    if (!bucket) {
      const up = parent.get(id);
      bucket = up === undefined ? 'unattributed' : classify(up);
    }
    bucketOf.set(id, bucket);
    return bucket;
  };
  const totals = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const b = classify(profile.samples[i]!);
    totals.set(b, (totals.get(b) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/** Inclusive (self + descendants) time of every frame whose function name or category matches. */
export function inclusive(profile: Profile, match: (frame: CallFrame) => boolean): number {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++)
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  let sum = 0;
  for (const [id, us] of self) {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      if (match(byId.get(cur)!.callFrame)) {
        sum += us;
        break;
      }
    }
  }
  return sum;
}

function main(): void {
  const args = process.argv.slice(2);
  const topIdx = args.indexOf('--top');
  const top = topIdx >= 0 ? Number(args[topIdx + 1]) : 30;
  const target = resolve(
    args.find((a, i) => !a.startsWith('--') && (topIdx < 0 || i !== topIdx + 1)) ??
      join(REPO, 'bench', 'results', 'profile'),
  );
  const files = statSync(target).isDirectory()
    ? readdirSync(target)
        .filter((f) => f.endsWith('.cpuprofile'))
        .sort()
        .map((f) => join(target, f))
    : [target];
  if (files.length === 0) throw new Error(`no .cpuprofile in ${target}`);
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    process.stdout.write(`\n=== ${file}\n${summarise(profile, top)}\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
