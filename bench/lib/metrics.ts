/** Scrapes the server's Prometheus text and turns before/after scrapes into per-stage means. */

export const STAGES = ['authentication', 'cedar', 'signing', 'commit'] as const;
export type StageName = (typeof STAGES)[number];

export interface Scrape {
  /** Sample name with labels (as written) -> value. */
  readonly samples: ReadonlyMap<string, number>;
}

export async function scrape(base: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { samples };
}

const get = (s: Scrape, name: string) => s.samples.get(name) ?? 0;

export interface StageDelta {
  /** Observations of this stage during the window. */
  readonly count: number;
  /** Mean wall time per observation, milliseconds (null when the stage did not run). */
  readonly meanMs: number | null;
  /** Total wall time in the stage, seconds. */
  readonly totalSeconds: number;
}

export function stageDeltas(before: Scrape, after: Scrape): Record<StageName, StageDelta> {
  const out = {} as Record<StageName, StageDelta>;
  for (const stage of STAGES) {
    const label = `{stage="${stage}"}`;
    const count =
      get(after, `countersign_stage_duration_seconds_count${label}`) -
      get(before, `countersign_stage_duration_seconds_count${label}`);
    const sum =
      get(after, `countersign_stage_duration_seconds_sum${label}`) -
      get(before, `countersign_stage_duration_seconds_sum${label}`);
    out[stage] = { count, totalSeconds: sum, meanMs: count > 0 ? (sum / count) * 1000 : null };
  }
  return out;
}

export function decisionDeltas(before: Scrape, after: Scrape): Record<string, number> {
  const out: Record<string, number> = {};
  for (const outcome of ['allow', 'deny', 'review']) {
    const name = `countersign_decisions_total{outcome="${outcome}"}`;
    const d = get(after, name) - get(before, name);
    if (d !== 0) out[outcome] = d;
  }
  return out;
}

export function failureDeltas(before: Scrape, after: Scrape): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of after.samples) {
    if (
      !name.startsWith('countersign_authn_failures_total') &&
      !name.startsWith('countersign_fail_closed_total')
    )
      continue;
    const d = value - get(before, name);
    if (d !== 0) out[name] = d;
  }
  return out;
}
