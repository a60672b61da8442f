// Loaded into the server process with `--import` when BENCH_PROFILE=1 (bench tooling, not
// product code). SIGUSR2 opens a measurement window; the next SIGUSR2 closes it and writes
//   <BENCH_PROFILE_DIR>/<n>.cpuprofile  the V8 CPU profile of the window
//   <BENCH_PROFILE_DIR>/<n>.json        event-loop utilisation and SQLite counters of the window
// so every measured case gets its own profile, without warm-up or the other cases in it.
// SQLite counters come from wrapping better-sqlite3's exec/run/all/get in this process:
// commits (one fsync each), units (one SAVEPOINT each) and the time spent in each call.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const dir = process.env.BENCH_PROFILE_DIR;
const interval = Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 250);

const sql = new Map();
const note = (key, ns) => {
  const t = sql.get(key);
  if (t) {
    t.n++;
    t.ns += ns;
  } else sql.set(key, { n: 1, ns });
};

function instrumentSqlite() {
  // Resolve from the repo root, as the store does: the same module instance.
  const require = createRequire(join(process.cwd(), 'package.json'));
  const Database = require('better-sqlite3');
  const proto = Database.prototype;
  const exec = proto.exec;
  proto.exec = function (text) {
    const t = process.hrtime.bigint();
    try {
      return exec.call(this, text);
    } finally {
      const key = /^(BEGIN|COMMIT|SAVEPOINT|RELEASE|ROLLBACK)/.exec(text)?.[1] ?? 'other';
      note(`exec ${key}`, process.hrtime.bigint() - t);
    }
  };
  const prepare = proto.prepare;
  let patched = false;
  proto.prepare = function (text) {
    const stmt = prepare.call(this, text);
    stmt.__benchLabel = text.replace(/\s+/g, ' ').slice(0, 48);
    if (!patched) {
      patched = true;
      const sp = Object.getPrototypeOf(stmt);
      for (const m of ['run', 'all', 'get']) {
        const orig = sp[m];
        sp[m] = function (...args) {
          const t = process.hrtime.bigint();
          try {
            return orig.apply(this, args);
          } finally {
            note(`${m} ${this.__benchLabel}`, process.hrtime.bigint() - t);
          }
        };
      }
    }
    return stmt;
  };
}

if (dir) {
  instrumentSqlite();
  const session = new Session();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) =>
      session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result))),
    );
  let n = 0;
  let window = null;
  process.on('SIGUSR2', () => {
    if (window === null) {
      sql.clear();
      window = { elu: performance.eventLoopUtilization(), started: performance.now() };
      if (process.env.BENCH_PROFILE_CPU !== '0')
        post('Profiler.enable')
          .then(() => post('Profiler.setSamplingInterval', { interval }))
          .then(() => post('Profiler.start'))
          .catch((error) => process.stderr.write(`profiler: ${error}\n`));
      return;
    }
    const w = window;
    window = null;
    const elu = performance.eventLoopUtilization(w.elu);
    const seconds = (performance.now() - w.started) / 1000;
    const counters = Object.fromEntries(
      [...sql].map(([k, v]) => [k, { calls: v.n, ms: Number(v.ns) / 1e6 }]),
    );
    const index = n++;
    const meta = () =>
      writeFileSync(
        join(dir, `${index}.json`),
        JSON.stringify({ eventLoopUtilization: elu.utilization, seconds, sqlite: counters }),
      );
    if (process.env.BENCH_PROFILE_CPU === '0') {
      meta();
      return;
    }
    post('Profiler.stop')
      .then(({ profile }) => {
        writeFileSync(join(dir, `${index}.cpuprofile`), JSON.stringify(profile));
        meta();
      })
      .catch((error) => process.stderr.write(`profiler: ${error}\n`));
  });
}
