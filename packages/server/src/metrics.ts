import { Counter, Histogram, Registry } from 'prom-client';

export type Stage = 'authentication' | 'cedar' | 'signing' | 'commit';

export interface Metrics {
  readonly registry: Registry;
  readonly decisions: Counter<'outcome'>;
  readonly authnFailures: Counter<'code'>;
  readonly stage: Histogram<'stage'>;
  readonly failClosed: Counter<'code'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  return {
    registry,
    decisions: new Counter({
      name: 'countersign_decisions_total',
      help: 'Checkpoint decisions by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    authnFailures: new Counter({
      name: 'countersign_authn_failures_total',
      help: 'Rejected agent authentications by error code',
      labelNames: ['code'],
      registers: [registry],
    }),
    failClosed: new Counter({
      name: 'countersign_fail_closed_total',
      help: 'Requests refused because something failed (store, audit, policy): no effect, no credential',
      labelNames: ['code'],
      registers: [registry],
    }),
    stage: new Histogram({
      name: 'countersign_stage_duration_seconds',
      help: 'Time spent per decision stage',
      labelNames: ['stage'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers: [registry],
    }),
  };
}

/** Times an async call into the stage histogram. */
export async function timed<T>(metrics: Metrics, stage: Stage, fn: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    metrics.stage.observe({ stage }, Number(process.hrtime.bigint() - start) / 1e9);
  }
}

export function timedSync<T>(metrics: Metrics, stage: Stage, fn: () => T): T {
  const start = process.hrtime.bigint();
  try {
    return fn();
  } finally {
    metrics.stage.observe({ stage }, Number(process.hrtime.bigint() - start) / 1e9);
  }
}
