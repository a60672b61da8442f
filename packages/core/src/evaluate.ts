/**
 * evaluateAccessRequest: the policy half of a decision, pure. Normalise the action and the
 * resource, resolve the catalog's facts, compute the risk, build the Cedar input and turn the
 * engine's answer into a `Decision`. `submitAccessRequest` calls exactly this, and so do
 * `countersign policy test`, backtests and shadow evaluation, so every one of them sees what
 * the server decides. The issuer check (can a credential be made at all?) is not here: it
 * asks the configured issuers, an effect outside policy.
 */
import { classifyAction, parseActionName } from './action.js';
import type { ResourceCatalog } from './catalog.js';
import { type CheckpointSettings, decide } from './checkpoint.js';
import { buildPolicyInput } from './policy-input.js';
import type { PolicyEngine, PolicyInput } from './ports.js';
import type { AgentRecord } from './records.js';
import { parseResource, type ResourceName } from './resource.js';
import { assessRisk, type RiskSettings } from './risk.js';
import type { AccessRequestInput, ActionClass, Decision, ResourceFacts, RiskAssessment } from './types.js';

/** The settings a decision depends on besides the agent, the request and the policies. */
export interface EvaluationSettings {
  readonly catalog: ResourceCatalog;
  readonly risk: RiskSettings;
  readonly checkpoint: CheckpointSettings;
  readonly actionClasses: Readonly<Record<string, string>>;
  /** Credential lifetime when the agent asks for none (seconds). */
  readonly defaultTtlSeconds: number;
}

export interface AccessRequestEvaluation {
  readonly action: string;
  readonly actionClass: ActionClass;
  readonly resource: ResourceName;
  readonly facts: ResourceFacts;
  readonly risk: RiskAssessment;
  readonly ttlSeconds: number;
  readonly policyInput: PolicyInput;
  readonly decision: Decision;
}

export type EvaluationAgent = Pick<AgentRecord, 'id' | 'owner' | 'boundary' | 'environment' | 'trustTier'>;

/** Throws the coded errors of `parseActionName` / `parseResource` for malformed names. */
export function evaluateAccessRequest(
  agent: EvaluationAgent,
  request: AccessRequestInput,
  engine: PolicyEngine,
  settings: EvaluationSettings,
): AccessRequestEvaluation {
  const action = parseActionName(request.action);
  const actionClass = classifyAction(action, settings.actionClasses);
  const resource = parseResource(request.resource);
  const facts = settings.catalog.resolve(resource);
  const risk = assessRisk({ agent, actionClass, facts, request }, settings.risk);
  const ttlSeconds = request.ttl_seconds ?? settings.defaultTtlSeconds;
  const policyInput = buildPolicyInput({
    agent,
    action,
    actionClass,
    resource,
    facts,
    risk,
    request,
    riskSettings: settings.risk,
    ttlSeconds,
  });
  const decision = decide(engine.evaluate(policyInput), engine.version, settings.checkpoint);
  return { action, actionClass, resource, facts, risk, ttlSeconds, policyInput, decision };
}

/** Decides a recorded Cedar input again under another engine (backtests, shadow mode). */
export function evaluatePolicyInput(
  input: PolicyInput,
  engine: PolicyEngine,
  checkpoint: CheckpointSettings,
): Decision {
  return decide(engine.evaluate(input), engine.version, checkpoint);
}
