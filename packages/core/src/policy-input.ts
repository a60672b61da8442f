/**
 * The Cedar input for one request: the slice of operator facts and scores that policies read.
 * The agent's free text (purpose, ticket, model output, tool summaries) is never part of it:
 * it cannot make a decision more permissive (THREATS.md INV-10).
 */

import type { CedarValue, PolicyInput } from './ports.js';
import type { AgentRecord } from './records.js';
import type { ResourceName } from './resource.js';
import { crossesBoundary, isTainted, type RiskSettings } from './risk.js';
import type { AccessRequestInput, ActionClass, ResourceFacts, RiskAssessment } from './types.js';

export function buildPolicyInput(input: {
  agent: Pick<AgentRecord, 'id' | 'owner' | 'boundary' | 'environment' | 'trustTier'>;
  action: string;
  actionClass: ActionClass;
  resource: ResourceName;
  facts: ResourceFacts;
  risk: RiskAssessment;
  request: AccessRequestInput;
  riskSettings: RiskSettings;
  ttlSeconds: number;
}): PolicyInput {
  const { agent, resource, facts } = input;
  return {
    principal: {
      id: agent.id,
      attrs: {
        owner: agent.owner,
        boundary: agent.boundary,
        environment: agent.environment,
        trust_tier: agent.trustTier,
      },
    },
    action: input.actionClass,
    resource: {
      id: resource.uri,
      attrs: {
        uri: resource.uri,
        kind: resource.scheme,
        sensitivity: facts.sensitivity,
        environment: facts.environment,
        owner: facts.owner,
        boundary: facts.boundary,
        catalogued: facts.pattern !== null,
      },
    },
    context: {
      action_name: input.action,
      risk_score: input.risk.score,
      risk_factors: input.risk.factors.map((f) => f.name) as CedarValue[],
      cross_boundary: crossesBoundary(agent, facts),
      tainted: isTainted(input.request, input.riskSettings),
      ttl_seconds: input.ttlSeconds,
    },
  };
}
