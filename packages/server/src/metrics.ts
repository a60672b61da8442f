import type { ReviewerLoadReport } from '@countersign/core';
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
  /** THREATS.md E1: review requests refused because their agent had too many pending. */
  readonly pendingCapRefusals: Counter;
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
    pendingCapRefusals: new Counter({
      name: 'countersign_pending_cap_refusals_total',
      help: 'Review requests refused (429 CS_TOO_MANY_PENDING) because the agent had too many pending reviews',
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

/**
 * Reviewer-load gauges (issue 8, OWASP Agentic T10), computed from the store when /metrics is
 * scraped over the last `REVIEWER_LOAD_WINDOW_SECONDS`: every instance reports the same truth.
 * One report serves every gauge of one scrape.
 */
export const REVIEWER_LOAD_WINDOW_SECONDS = 86_400;

export function registerReviewerLoadMetrics(
  metrics: Metrics,
  report: () => Promise<ReviewerLoadReport>,
): void {
  const registers = [metrics.registry];
  let cached: { at: number; value: Promise<ReviewerLoadReport> } | null = null;
  const current = () => {
    const now = Date.now();
    if (!cached || now - cached.at > 2000) cached = { at: now, value: report() };
    return cached.value;
  };
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (g: Gauge, r: ReviewerLoadReport) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        fill(this, await current());
      },
    });
  gauge('countersign_review_queue_depth', 'Open reviews by reviewer group', ['group'], (g, r) => {
    for (const x of r.groups) g.set({ group: x.group }, x.queueDepth);
  });
  gauge(
    'countersign_review_time_to_decision_seconds',
    'Time from request to decision by reviewer group (last 24 h), median and p90',
    ['group', 'quantile'],
    (g, r) => {
      for (const x of r.groups) {
        if (x.timeToDecision.medianSeconds !== null)
          g.set({ group: x.group, quantile: '0.5' }, x.timeToDecision.medianSeconds);
        if (x.timeToDecision.p90Seconds !== null)
          g.set({ group: x.group, quantile: '0.9' }, x.timeToDecision.p90Seconds);
      }
    },
  );
  gauge(
    'countersign_review_decisions_per_hour',
    'Reviews decided per hour by group (last 24 h)',
    ['group'],
    (g, r) => {
      for (const x of r.groups) g.set({ group: x.group }, x.decisionsPerHour);
    },
  );
  gauge(
    'countersign_review_approval_rate',
    'Share of decided reviews approved, by group (last 24 h)',
    ['group'],
    (g, r) => {
      for (const x of r.groups) if (x.approvalRate !== null) g.set({ group: x.group }, x.approvalRate);
    },
  );
  gauge(
    'countersign_review_expired',
    'Reviews that expired undecided, by group (last 24 h)',
    ['group'],
    (g, r) => {
      for (const x of r.groups) g.set({ group: x.group }, x.expired);
    },
  );
  gauge(
    'countersign_review_rubber_stamp_votes',
    'Votes cast within seconds of opening the evidence (quick) or without opening it (unopened), by group (last 24 h)',
    ['group', 'signal'],
    (g, r) => {
      for (const x of r.groups) {
        g.set({ group: x.group, signal: 'quick' }, x.quickVotes);
        g.set({ group: x.group, signal: 'unopened' }, x.unopenedVotes);
      }
    },
  );
  gauge(
    'countersign_review_out_of_hours_votes',
    'Votes cast outside working hours, by group (last 24 h)',
    ['group'],
    (g, r) => {
      for (const x of r.groups) g.set({ group: x.group }, x.outOfHoursVotes);
    },
  );
  gauge(
    'countersign_reviewer_votes',
    'Votes per reviewer (last 24 h), by signal: all, quick, unopened, out_of_hours',
    ['reviewer', 'signal'],
    (g, r) => {
      for (const x of r.reviewers) {
        g.set({ reviewer: x.reviewerId, signal: 'all' }, x.votes);
        g.set({ reviewer: x.reviewerId, signal: 'quick' }, x.quickVotes);
        g.set({ reviewer: x.reviewerId, signal: 'unopened' }, x.unopenedVotes);
        g.set({ reviewer: x.reviewerId, signal: 'out_of_hours' }, x.outOfHoursVotes);
      }
    },
  );
  gauge(
    'countersign_reviewer_queue_depth',
    'Open reviews each reviewer could decide and has not',
    ['reviewer'],
    (g, r) => {
      for (const x of r.reviewers) g.set({ reviewer: x.reviewerId }, x.queueDepth);
    },
  );
  gauge('countersign_agent_pending_reviews', 'Open reviews per agent', ['agent'], (g, r) => {
    for (const x of r.agents) if (x.pending > 0) g.set({ agent: x.agentId }, x.pending);
  });
  gauge(
    'countersign_agent_escalation_rate',
    "Share of an agent's requests that went to a person (last 24 h)",
    ['agent'],
    (g, r) => {
      for (const x of r.agents) g.set({ agent: x.agentId }, x.escalationRate);
    },
  );
}
