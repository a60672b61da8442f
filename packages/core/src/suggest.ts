/**
 * Suggested policies: review patterns that people approve again and again, never deny,
 * written as the narrowest Cedar permit that covers them. Pure: nothing is adopted here;
 * adoption takes an admin's passkey assertion over the text (never automatic).
 *
 * A pattern is one agent, one action, one exact resource and the same context facts (taint,
 * boundary crossing); the permit also bounds the risk score by the highest one approved, so a
 * request that looks riskier than anything a person approved still goes to a person.
 */
import { type BacktestReport, recordedPolicyInput } from './backtest.js';
import { sha256Hex } from './digest.js';
import type { AccessRequestRecord } from './records.js';
import type { RiskSettings } from './risk.js';

/** Approvals a pattern needs before it is suggested. */
export const SUGGESTION_MIN_APPROVALS = 5;

export interface SuggestedPolicy {
  /** Stable for the same pattern: `suggested-<12 hex>`. */
  readonly id: string;
  readonly agentId: string;
  readonly action: string;
  readonly actionClass: string;
  readonly resource: string;
  readonly tainted: boolean;
  readonly crossBoundary: boolean;
  readonly maxRiskScore: number;
  readonly reviewerGroup: string | null;
  /** Reviews people approved for this pattern (the evidence). */
  readonly approvals: number;
  readonly approvedRequestIds: readonly string[];
  /** The reviewing permits the new permit waives (from the approved requests' decisions). */
  readonly waives: readonly string[];
  readonly ttlSeconds: number;
  /** The Cedar text an admin adopts. */
  readonly text: string;
  /** `sha256:` of the text; the adoption assertion signs over it. */
  readonly textSha256: string;
}

interface Pattern {
  agentId: string;
  action: string;
  actionClass: string;
  resource: string;
  tainted: boolean;
  crossBoundary: boolean;
  records: AccessRequestRecord[];
}

const cedarString = (s: string) => JSON.stringify(s);

function ttlText(seconds: number): string {
  return seconds % 3600 === 0
    ? `${seconds / 3600}h`
    : seconds % 60 === 0
      ? `${seconds / 60}m`
      : `${seconds}s`;
}

export function suggestionText(s: Omit<SuggestedPolicy, 'text' | 'textSha256'>): string {
  const lines = [
    `// Suggested by Countersign: ${s.approvals} reviews of this exact request were approved and none denied.`,
    `@id(${cedarString(s.id)})`,
    `@reason(${cedarString(`Routine for ${s.agentId}: approved ${s.approvals} times by ${s.reviewerGroup ?? 'reviewers'}, never denied`)})`,
    `@ttl(${cedarString(ttlText(s.ttlSeconds))})`,
  ];
  if (s.waives.length > 0) lines.push(`@waives_review(${cedarString(s.waives.join(','))})`);
  lines.push(
    'permit (',
    `  principal == Countersign::Agent::${cedarString(s.agentId)},`,
    `  action == Countersign::Action::${cedarString(s.actionClass)},`,
    `  resource == Countersign::Resource::${cedarString(s.resource)}`,
    ')',
    'when {',
    `  context.action_name == ${cedarString(s.action)} &&`,
    `  ${s.tainted ? '' : '!'}context.tainted &&`,
    `  ${s.crossBoundary ? '' : '!'}context.cross_boundary &&`,
    `  context.risk_score <= ${s.maxRiskScore}`,
    '};',
    '',
  );
  return lines.join('\n');
}

/**
 * Patterns approved at least `minApprovals` times and never denied. A pattern whose reviews
 * needed two people or separation of duties is never suggested: those are the exceptions the
 * two-person rule exists for.
 */
export function mineSuggestions(input: {
  readonly records: readonly AccessRequestRecord[];
  readonly riskSettings: RiskSettings;
  readonly minApprovals?: number;
}): SuggestedPolicy[] {
  const min = input.minApprovals ?? SUGGESTION_MIN_APPROVALS;
  const patterns = new Map<string, Pattern>();
  /** agent, action, resource triples a person ever denied, in any context. */
  const denied = new Set<string>();
  for (const r of input.records) {
    if (r.deadlineAt === null) continue; // never reviewed
    const triple = `${r.agentId}\0${r.action}\0${r.resource}`;
    if (r.status === 'denied') denied.add(triple);
    const pi = recordedPolicyInput(r, input.riskSettings);
    if (!pi) continue;
    const tainted = pi.context.tainted === true;
    const crossBoundary = pi.context.cross_boundary === true;
    const key = `${triple}\0${tainted}\0${crossBoundary}`;
    let p = patterns.get(key);
    if (!p) {
      p = {
        agentId: r.agentId,
        action: r.action,
        actionClass: pi.action,
        resource: r.resource,
        tainted,
        crossBoundary,
        records: [],
      };
      patterns.set(key, p);
    }
    p.records.push(r);
  }
  const out: SuggestedPolicy[] = [];
  for (const [key, p] of patterns) {
    if (denied.has(`${p.agentId}\0${p.action}\0${p.resource}`)) continue;
    const approved = p.records.filter((r) => r.status === 'allowed');
    if (approved.length < min) continue;
    const o = approved.map((r) => r.decision.obligations);
    if (o.some((x) => x.approvals > 1 || x.separation.length > 0)) continue;
    const groups = [...new Set(o.map((x) => x.reviewerGroup))];
    const base = {
      id: `suggested-${sha256Hex(key).slice(0, 12)}`,
      agentId: p.agentId,
      action: p.action,
      actionClass: p.actionClass,
      resource: p.resource,
      tainted: p.tainted,
      crossBoundary: p.crossBoundary,
      maxRiskScore: Math.max(...approved.map((r) => r.risk.score)),
      reviewerGroup: groups.length === 1 ? (groups[0] ?? null) : null,
      approvals: approved.length,
      approvedRequestIds: approved.map((r) => r.id),
      waives: [
        ...new Set(
          approved.flatMap((r) =>
            r.decision.determiningPolicies.filter((d) => d.effect === 'permit').map((d) => d.id),
          ),
        ),
      ].sort(),
      ttlSeconds: Math.min(...o.map((x) => x.maxTtlSeconds)),
    };
    const text = suggestionText(base);
    out.push({ ...base, text, textSha256: `sha256:${sha256Hex(text)}` });
  }
  return out.sort((a, b) => b.approvals - a.approvals || a.id.localeCompare(b.id));
}

/** What a suggestion's backtest proves, counted from every change it made. */
export interface SuggestionProof {
  /** Past reviews the permit would have made unnecessary. */
  readonly reviewsSpared: number;
  /** Requests it would have decided otherwise, besides spared reviews. */
  readonly otherChanges: number;
  /** Requests a reviewer (or a policy) denied that it would have allowed: must be 0. */
  readonly allowsDenied: number;
  /** Offered only when it allowed nothing denied and changed nothing but reviews into allows. */
  readonly holds: boolean;
}

export function suggestionProof(report: BacktestReport): SuggestionProof {
  const allowsDenied = report.all.filter(
    (c) => c.to !== 'deny' && (c.from === 'deny' || c.recordedStatus === 'denied'),
  ).length;
  const reviewsSpared = report.all.filter((c) => c.from === 'review' && c.to === 'allow').length;
  const otherChanges = report.all.length - reviewsSpared;
  return { reviewsSpared, otherChanges, allowsDenied, holds: allowsDenied === 0 && otherChanges === 0 };
}
