/** A tiny timing helper for the micro-benchmarks: warm up, then time N calls (sync or async). */
import { threadCpu } from '../lib/server.js';

export interface Timing {
  readonly name: string;
  readonly usPerOp: number;
  readonly opsPerSecond: number;
  /** Main-thread CPU per op (µs), from /proc; async work on other threads is not in it. */
  readonly mainCpuUsPerOp: number | null;
  /** CPU of every other thread of this process per op (threadpool, GC helpers). */
  readonly otherCpuUsPerOp: number | null;
}

export async function time(
  name: string,
  fn: () => unknown,
  options: { iterations?: number; warmup?: number; concurrency?: number } = {},
): Promise<Timing> {
  const iterations = options.iterations ?? 20_000;
  const warmup = options.warmup ?? Math.min(5_000, iterations);
  const concurrency = options.concurrency ?? 1;
  const runMany = async (n: number) => {
    if (concurrency === 1) {
      for (let i = 0; i < n; i++) {
        const r = fn();
        if (r instanceof Promise) await r;
      }
      return;
    }
    // Keep `concurrency` calls in flight, like concurrent requests on one event loop.
    let started = 0;
    const lane = async () => {
      while (started < n) {
        started++;
        await fn();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  };
  await runMany(warmup);
  const cpu0 = threadCpu(process.pid);
  const t0 = process.hrtime.bigint();
  await runMany(iterations);
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu1 = threadCpu(process.pid);
  const usPerOp = ns / 1e3 / iterations;
  return {
    name,
    usPerOp,
    opsPerSecond: 1e6 / usPerOp,
    mainCpuUsPerOp: cpu0 && cpu1 ? ((cpu1.main - cpu0.main) / iterations) * 1e6 : null,
    otherCpuUsPerOp: cpu0 && cpu1 ? ((cpu1.others - cpu0.others) / iterations) * 1e6 : null,
  };
}

export function report(rows: Timing[]): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'case'.padEnd(w)}  wall us/op     ops/s  main CPU us/op  other CPU us/op`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(w)}  ${r.usPerOp.toFixed(1).padStart(10)}  ${r.opsPerSecond.toFixed(0).padStart(8)}  ${(r.mainCpuUsPerOp ?? Number.NaN).toFixed(1).padStart(14)}  ${(r.otherCpuUsPerOp ?? Number.NaN).toFixed(1).padStart(15)}`,
    );
  }
}
