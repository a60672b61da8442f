/**
 * Risk assessment: a 0-100 score with named factors, computed at request time from operator
 * facts (catalog, registry) and the agent's claims. Claims can only raise risk (INV-10).
 */
import { isSuspiciousText } from './text.js';
import type {
  AccessRequestInput,
  ActionClass,
  Agent,
  ResourceFacts,
  RiskAssessment,
  RiskFactor,
} from './types.js';

export interface RiskWeights {
  readonly action: Readonly<Record<ActionClass, number>>;
  readonly sensitivity: Readonly<Record<ResourceFacts['sensitivity'], number>>;
  readonly production: number;
  readonly crossBoundary: number;
  /** Untrusted input earlier in the tool chain while touching confidential or restricted data. */
  readonly taintedSensitive: number;
  /** Untrusted input earlier in the tool chain, other data. */
  readonly tainted: number;
  readonly longTtl: number;
  readonly uncatalogued: number;
  readonly suspiciousText: number;
}

export interface RiskSettings {
  readonly weights: RiskWeights;
  /** Tool names whose output is untrusted input (web fetches, inbound mail, ...). */
  readonly taintedTools: readonly string[];
  /** A requested TTL above this many seconds is a risk factor. */
  readonly longTtlSeconds: number;
  /** Environment names that count as production. */
  readonly productionEnvironments: readonly string[];
}

export const DEFAULT_RISK_SETTINGS: RiskSettings = {
  weights: {
    action: { read: 0, write: 20, delete: 30, admin: 35, export: 40, share: 35, other: 25 },
    sensitivity: { public: 0, internal: 5, confidential: 20, restricted: 35 },
    production: 15,
    crossBoundary: 20,
    taintedSensitive: 25,
    tainted: 10,
    longTtl: 10,
    uncatalogued: 20,
    suspiciousText: 15,
  },
  taintedTools: ['web_fetch', 'http_get', 'browse', 'read_email', 'inbound_email', 'search_web'],
  longTtlSeconds: 3600,
  productionEnvironments: ['production', 'prod'],
};

export interface RiskInput {
  readonly agent: Pick<Agent, 'boundary'>;
  readonly actionClass: ActionClass;
  readonly facts: ResourceFacts;
  readonly request: AccessRequestInput;
}

/** Operator facts only: an uncatalogued resource is outside every boundary. */
export function crossesBoundary(agent: Pick<Agent, 'boundary'>, facts: ResourceFacts): boolean {
  return facts.pattern === null || agent.boundary !== facts.boundary;
}

export function isTainted(request: AccessRequestInput, settings: RiskSettings): boolean {
  return (request.context.tool_chain ?? []).some(
    (call) => call.source === 'untrusted' || settings.taintedTools.includes(call.tool),
  );
}

function agentText(request: AccessRequestInput): string[] {
  const texts = [
    request.intent.purpose,
    request.intent.task_id,
    request.intent.ticket ?? '',
    request.context.model_output ?? '',
  ];
  for (const call of request.context.tool_chain ?? [])
    texts.push(call.tool, call.source ?? '', call.summary ?? '');
  if (request.context.on_behalf_of) texts.push(request.context.on_behalf_of);
  return texts;
}

export function assessRisk(input: RiskInput, settings: RiskSettings = DEFAULT_RISK_SETTINGS): RiskAssessment {
  const { weights } = settings;
  const factors: RiskFactor[] = [];
  const add = (name: string, weight: number, detail: string) => {
    if (weight > 0) factors.push({ name, weight, detail });
  };
  add('action_class', weights.action[input.actionClass], `action class ${input.actionClass}`);
  add('sensitivity', weights.sensitivity[input.facts.sensitivity], `resource is ${input.facts.sensitivity}`);
  if (settings.productionEnvironments.includes(input.facts.environment)) {
    add('production', weights.production, `resource environment ${input.facts.environment}`);
  }
  // An uncatalogued resource always counts as crossing, whatever the agent's boundary is called.
  if (crossesBoundary(input.agent, input.facts)) {
    add(
      'cross_boundary',
      weights.crossBoundary,
      `agent boundary ${input.agent.boundary}, resource boundary ${input.facts.boundary}`,
    );
  }
  if (isTainted(input.request, settings)) {
    const sensitive = input.facts.sensitivity === 'confidential' || input.facts.sensitivity === 'restricted';
    add(
      'tainted_tool_chain',
      sensitive ? weights.taintedSensitive : weights.tainted,
      sensitive
        ? 'untrusted input earlier in the tool chain, touching sensitive data'
        : 'untrusted input earlier in the tool chain',
    );
  }
  if ((input.request.ttl_seconds ?? 0) > settings.longTtlSeconds) {
    add('long_ttl', weights.longTtl, `requested TTL ${input.request.ttl_seconds}s`);
  }
  if (input.facts.pattern === null)
    add('uncatalogued', weights.uncatalogued, 'no catalog entry matches this resource');
  if (agentText(input.request).some(isSuspiciousText)) {
    add(
      'suspicious_text',
      weights.suspiciousText,
      'agent text carries bidirectional or invisible characters',
    );
  }
  const score = Math.min(
    100,
    factors.reduce((sum, f) => sum + f.weight, 0),
  );
  return { score, factors };
}
