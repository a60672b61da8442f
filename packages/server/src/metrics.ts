import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InstanceEvents } from './instance-events.js';
import type { OpenedStore } from './store.js';

export type Stage = 'authentication' | 'cedar' | 'signing' | 'issuing' | 'commit';

export interface Metrics {
  readonly registry: Registry;
  readonly decisions: Counter<'outcome'>;
  readonly authnFailures: Counter<'code'>;
  readonly stage: Histogram<'stage'>;
  readonly failClosed: Counter<'code'>;
  readonly policyReloads: Counter<'result'>;
  readonly revocationAttempts: Counter<'outcome'>;
  readonly revocationsFailed: Gauge;
  readonly proxyRequests: Counter<'upstream' | 'outcome'>;
}

export interface MetricSources {
  /** Leases whose downstream revocation failed and is not confirmed yet (from the store). */
  readonly failingRevocations?: () => Promise<number>;
}

export function createMetrics(sources: MetricSources = {}): Metrics {
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
    policyReloads: new Counter({
      name: 'countersign_policy_reloads_total',
      help: 'Changed policy files seen by the reload loop or SIGHUP: loaded, or refused (the last good set stays in force)',
      labelNames: ['result'],
      registers: [registry],
    }),
    revocationAttempts: new Counter({
      name: 'countersign_revocation_attempts_total',
      help: 'Downstream revocation attempts by the lease reaper, by outcome (confirmed, failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    // THREATS.md C5: alarm when this is above 0. Read from the store at scrape time, so every
    // instance reports the same truth and a restart does not reset it.
    revocationsFailed: new Gauge({
      name: 'countersign_revocations_failed',
      help: 'Leases whose downstream revocation failed and is still being retried (never dropped)',
      registers: [registry],
      async collect() {
        if (sources.failingRevocations) this.set(await sources.failingRevocations());
      },
    }),
    proxyRequests: new Counter({
      name: 'countersign_proxy_requests_total',
      help: 'Requests through the credential proxy by upstream and outcome',
      labelNames: ['upstream', 'outcome'],
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

/** Store and cross-instance gauges, read when /metrics is scraped. */
export function registerStoreMetrics(
  metrics: Metrics,
  store: Pick<OpenedStore, 'store' | 'stats' | 'changes'>,
  events: InstanceEvents,
): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'countersign_store_write_failing',
    help: '1 while store writes fail (the reason is in /healthz), else 0',
    registers,
    collect() {
      this.set(store.store.writeHealth() === null ? 0 : 1);
    },
  });
  const stats = store.stats;
  if (stats) {
    new Gauge({
      name: 'countersign_store_pool_connections',
      help: 'PostgreSQL pool connections by state',
      labelNames: ['state'],
      registers,
      collect() {
        const s = stats();
        this.set({ state: 'total' }, s.poolTotal);
        this.set({ state: 'idle' }, s.poolIdle);
        this.set({ state: 'waiting' }, s.poolWaiting);
      },
    });
    new Gauge({
      name: 'countersign_store_retries',
      help: 'Units of work run again after a serialization failure or deadlock (since start)',
      registers,
      collect() {
        this.set(stats().retries);
      },
    });
  }
  const changes = store.changes;
  if (changes) {
    new Gauge({
      name: 'countersign_events_listening',
      help: "1 while the LISTEN connection for other instances' changes is up, else 0 (polling only)",
      registers,
      collect() {
        this.set(changes.status().listening ? 1 : 0);
      },
    });
  }
  new Gauge({
    name: 'countersign_events_poll_age_seconds',
    help: 'Seconds since the last successful poll of the audit chain for changes made elsewhere',
    registers,
    collect() {
      const at = events.status().lastPollAt;
      this.set(at === null ? -1 : (Date.now() - at) / 1000);
    },
  });
}
