/**
 * Suggested policies with their evidence (issue 8): mined from the history, each backtested
 * as the active set plus that one permit, and kept only when the backtest proves it would
 * have allowed nothing a reviewer denied and changed nothing but reviews into allows.
 * Adoption writes the file beside the active policies and reloads the engine in this process.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ANALYTICS_MAX_ROWS,
  type BacktestReport,
  backtest,
  CountersignError,
  type DomainContext,
  mineSuggestions,
  type SuggestedPolicy,
  type SuggestionProof,
  suggestionProof,
} from '@countersign/core';
import { loadPolicySet, readPolicyDirectory } from '@countersign/policy';

export interface SuggestionEvidence extends Omit<SuggestionProof, 'holds'> {
  readonly replayed: number;
  readonly backtest: BacktestReport;
}

export interface Suggestion {
  readonly policy: SuggestedPolicy;
  readonly evidence: SuggestionEvidence;
}

export interface SuggestionOptions {
  readonly sinceMs: number;
  readonly minApprovals?: number;
  /** Only this suggestion (adoption checks one; the proof is the same). */
  readonly only?: string;
}

/** Mines, validates and backtests; a suggestion without a clean proof is dropped. */
export async function computeSuggestions(
  ctx: DomainContext,
  config: { policyDir: string; schemaFile: string },
  options: SuggestionOptions,
): Promise<Suggestion[]> {
  const since = ctx.clock.now() - options.sinceMs;
  const records = await ctx.store.read((tx) => tx.listRequestsSince(since, ANALYTICS_MAX_ROWS));
  const mined = mineSuggestions({
    records,
    riskSettings: ctx.risk,
    ...(options.minApprovals === undefined ? {} : { minApprovals: options.minApprovals }),
  });
  const active = readPolicyDirectory(config.policyDir, config.schemaFile);
  const out: Suggestion[] = [];
  for (const policy of mined) {
    if (options.only !== undefined && policy.id !== options.only) continue;
    if (active.policies.some((p) => p.name === `${policy.id}.cedar`)) continue; // adopted already
    let candidate: ReturnType<typeof loadPolicySet>;
    try {
      candidate = loadPolicySet({
        schema: active.schema,
        policies: [...active.policies, { name: `${policy.id}.cedar`, text: policy.text }],
      });
    } catch {
      continue; // does not validate against the schema: never offered
    }
    // The permit names one principal, one action class and one resource: it cannot be
    // satisfied by any other request, so only that agent's requests on that resource can
    // decide otherwise. Replaying just those is the same proof, without the rest.
    const report = backtest({
      records: records.filter((r) => r.agentId === policy.agentId && r.resource === policy.resource),
      candidate,
      checkpoint: ctx.checkpoint,
      riskSettings: ctx.risk,
      examplesPerChange: 3,
    });
    const { holds, reviewsSpared, otherChanges, allowsDenied } = suggestionProof(report);
    if (!holds) continue;
    out.push({
      policy,
      evidence: { reviewsSpared, otherChanges, allowsDenied, replayed: report.replayed, backtest: report },
    });
  }
  return out;
}

/**
 * Writes an adopted suggestion as `<policy dir>/<id>.cedar` after checking that the whole
 * set, with it, still loads; returns the file. Atomic: a temp file renamed into place.
 */
export function writeAdoptedPolicy(
  config: { policyDir: string; schemaFile: string },
  policy: SuggestedPolicy,
): string {
  const active = readPolicyDirectory(config.policyDir, config.schemaFile);
  const name = `${policy.id}.cedar`;
  if (active.policies.some((p) => p.name === name))
    throw new CountersignError('CS_POLICY_CHANGED', `${name} is already in the policy set`);
  loadPolicySet({ schema: active.schema, policies: [...active.policies, { name, text: policy.text }] });
  const file = join(config.policyDir, name);
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, policy.text, { mode: 0o600, flag: 'wx' });
  renameSync(temp, file);
  if (!existsSync(file)) throw new CountersignError('CS_POLICY_ERROR', `could not write ${file}`);
  return file;
}

export function suggestionView(s: Suggestion) {
  const p = s.policy;
  return {
    id: p.id,
    agent_id: p.agentId,
    action: p.action,
    resource: p.resource,
    reviewer_group: p.reviewerGroup,
    approvals: p.approvals,
    approved_request_ids: p.approvedRequestIds.slice(0, 20),
    waives: p.waives,
    max_risk_score: p.maxRiskScore,
    ttl_seconds: p.ttlSeconds,
    text: p.text,
    text_sha256: p.textSha256,
    evidence: {
      reviews_spared: s.evidence.reviewsSpared,
      other_changes: s.evidence.otherChanges,
      allows_denied: s.evidence.allowsDenied,
      replayed: s.evidence.replayed,
    },
  };
}
