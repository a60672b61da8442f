/**
 * The lease reaper's driver: runs reapLeases (core) every `reaper_interval`, and at once for
 * the leases a task completion, suspension or admin revoke just ended, so their downstream
 * revocation happens within the request that ended them (bounded by the issuer's timeouts).
 * Its state lives in the store: a restart or another instance picks up where it stopped.
 */
import { type DomainContext, type ReapResult, reapLeases } from '@countersign/core';
import type pino from 'pino';
import type { Metrics } from './metrics.js';

export interface Reaper {
  readonly instanceId: string;
  /** One full pass: expiry, abandoned intents and tasks, due revocations. */
  runOnce(): Promise<ReapResult>;
  /** Revokes these `revoke_pending` leases now; returns the ids still pending afterwards. */
  revokeNow(leaseIds: readonly string[]): Promise<string[]>;
}

export function createReaper(options: {
  ctx: DomainContext;
  metrics: Metrics;
  log: pino.Logger;
  instanceId: string;
}): Reaper {
  const { ctx, metrics, log, instanceId } = options;
  const record = (result: ReapResult) => {
    if (result.confirmed.length)
      metrics.revocationAttempts.inc({ outcome: 'confirmed' }, result.confirmed.length);
    if (result.failed.length) {
      metrics.revocationAttempts.inc({ outcome: 'failed' }, result.failed.length);
      log.warn({ leases: result.failed }, 'downstream revocation failed; it will be retried');
    }
    return result;
  };
  return {
    instanceId,
    async runOnce() {
      return record(await reapLeases({ ctx, input: { instanceId } }));
    },
    async revokeNow(leaseIds) {
      if (leaseIds.length === 0) return [];
      const result = record(await reapLeases({ ctx, input: { instanceId, leaseIds } }));
      const done = new Set(result.confirmed);
      return leaseIds.filter((id) => !done.has(id));
    },
  };
}
