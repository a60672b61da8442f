/** Replays the requests of a window against a candidate policy set (reads only). */
import { type BacktestReport, backtest } from '../backtest.js';
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
