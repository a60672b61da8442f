import { fileURLToPath } from 'node:url';
import type {
  ActionClass,
  CedarValue,
  CheckpointSettings,
  PolicyInput,
  Sensitivity,
} from '@countersign/core';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/policies/', import.meta.url));
export const SCHEMA_PATH = fileURLToPath(new URL('../../../examples/schema.cedarschema', import.meta.url));

export const SETTINGS: CheckpointSettings = {
  defaultMaxTtlSeconds: 3600,
  defaultDeadlineSeconds: 900,
  fallbackReviewGroup: null,
};

export interface AgentFacts {
  readonly id: string;
  readonly owner: string;
  readonly boundary: string;
  readonly environment: string;
  readonly trust_tier: string;
}

export interface ResourceAttrs {
  readonly sensitivity: Sensitivity;
  readonly environment: string;
  readonly owner: string;
  readonly boundary: string;
  readonly catalogued: boolean;
}

export function agent(overrides: Partial<AgentFacts> = {}): AgentFacts {
  return {
    id: 'agent-1',
    owner: 'app',
    boundary: 'acme',
    environment: 'production',
    trust_tier: 'standard',
    ...overrides,
  };
}

/** Builds the policy input the way core's submit use case does (kind = URI scheme). */
export function policyInput(
  action: ActionClass,
  who: AgentFacts,
  uri: string,
  facts: ResourceAttrs,
  extra: { tainted?: boolean; risk_score?: number; context?: Record<string, CedarValue> } = {},
): PolicyInput {
  const { id, ...agentAttrs } = who;
  return {
    principal: { id, attrs: agentAttrs },
    action,
    resource: { id: uri, attrs: { uri, kind: uri.slice(0, uri.indexOf(':')), ...facts } },
    context: {
      action_name: action,
      risk_score: extra.risk_score ?? 10,
      risk_factors: [],
      cross_boundary: who.boundary !== facts.boundary,
      tainted: extra.tainted ?? false,
      ttl_seconds: 900,
      ...extra.context,
    },
  };
}

export const SCHEMA_FOR_TESTS = `
namespace Countersign {
  entity Agent { owner: String, boundary: String, environment: String, trust_tier: String };
  entity Resource {
    uri: String, kind: String, sensitivity: String, environment: String,
    owner: String, boundary: String, catalogued: Bool,
  };
  type Ctx = {
    action_name: String, risk_score: Long, risk_factors: Set<String>,
    cross_boundary: Bool, tainted: Bool, ttl_seconds: Long,
  };
  action read, write, delete, admin, export, share, other
    appliesTo { principal: [Agent], resource: [Resource], context: Ctx };
}
`;
