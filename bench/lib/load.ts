/** One autocannon run against one endpoint, with the assertion pool feeding each request. */
import autocannon from 'autocannon';
import type { AssertionPool } from './assertions.js';

export interface LoadSpec {
  readonly base: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: string;
  /** Supplies a fresh assertion per request; absent for the baseline. */
  readonly pool?: AssertionPool;
  readonly expectStatus: number;
  /** The `status` the JSON answer must carry (allowed / denied / pending). */
  readonly expectOutcome?: string;
  readonly connections: number;
  readonly durationSeconds: number;
}

export interface LoadResult {
  readonly requestsPerSecond: number;
  /** Completed requests / duration (all statuses). */
  readonly completed: number;
  readonly durationSeconds: number;
  readonly latencyMs: {
    readonly mean: number;
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
  };
  readonly statusCodes: Record<string, number>;
  /** Answers with the wrong status code or the wrong outcome, plus connection errors (timeouts included). */
  readonly errors: number;
  readonly wrongStatus: number;
  readonly wrongOutcome: number;
  readonly connectionErrors: number;
  readonly timeouts: number;
  /** Load generator CPU seconds (user + system) during the run. */
  readonly loaderCpuSeconds: number;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.base);
  let wrongOutcome = 0;
  const marker = spec.expectOutcome ? `"status":"${spec.expectOutcome}"` : null;
  const headers: Record<string, string> = spec.body ? { 'content-type': 'application/json' } : {};
  const pool = spec.pool;
  const request: autocannon.Request = {
    method: spec.method,
    path: spec.path,
    headers,
    ...(spec.body ? { body: spec.body } : {}),
    ...(pool
      ? {
          setupRequest: (req: autocannon.Request) => {
            req.headers = { ...headers, authorization: `Bearer ${pool.next()}` };
            return req;
          },
        }
      : {}),
    onResponse: (status: number, body: string) => {
      if (marker && status === spec.expectStatus && !String(body).includes(marker)) wrongOutcome++;
    },
  };
  const cpu0 = process.cpuUsage();
  const result = await autocannon({
    url: `${url.protocol}//${url.host}`,
    connections: spec.connections,
    duration: spec.durationSeconds,
    requests: [request],
  });
  const cpu = process.cpuUsage(cpu0);
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {}) as Array<
    [string, { count: number | string }]
  >) {
    statusCodes[code] = Number(count);
  }
  const completed = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  const wrongStatus = completed - (statusCodes[String(spec.expectStatus)] ?? 0);
  return {
    requestsPerSecond: result.requests.average,
    completed,
    durationSeconds: result.duration,
    latencyMs: {
      mean: result.latency.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    statusCodes,
    errors: wrongStatus + wrongOutcome + result.errors, // autocannon counts timeouts in errors
    wrongStatus,
    wrongOutcome,
    connectionErrors: result.errors,
    timeouts: result.timeouts,
    loaderCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}
