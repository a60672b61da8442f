/** Replays the requests of a window against a candidate policy set (reads only). */
import { type BacktestReport, backtest, type ShadowSummary, shadowSummary } from '../backtest.js';
import type { PolicyEngine } from '../ports.js';
import type { DomainContext } from './context.js';
import { ANALYTICS_MAX_ROWS } from './reviewer-load.js';

export async function backtestCandidate({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { candidate: PolicyEngine; sinceMs: number; examplesPerChange?: number };
}): Promise<BacktestReport> {
  const since = ctx.clock.now() - input.sinceMs;
  const records = await ctx.store.read((tx) => tx.listRequestsSince(since, ANALYTICS_MAX_ROWS));
  return backtest({
    records,
    candidate: input.candidate,
    checkpoint: ctx.checkpoint,
    riskSettings: ctx.risk,
    ...(input.examplesPerChange === undefined ? {} : { examplesPerChange: input.examplesPerChange }),
  });
}

/** Shadow mode's differences from live traffic in a window (reads only). */
export async function shadowDifferences({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { sinceMs: number };
}): Promise<ShadowSummary> {
  const since = ctx.clock.now() - input.sinceMs;
  const rows = await ctx.store.read((tx) => tx.listShadowDecisions(since, ANALYTICS_MAX_ROWS));
  return shadowSummary(rows);
}
