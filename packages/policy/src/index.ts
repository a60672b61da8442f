/**
 * @countersign/policy: the Cedar adapter for core's `PolicyEngine` port. Plain Cedar
 * validated against the shipped schema; obligations come from policy annotations; any
 * error fails closed.
 */

export { policyEngineFromDirectory, readPolicyDirectory, validatePolicyDirectory } from './directory.js';
export {
  ACTION_TYPE,
  AGENT_TYPE,
  CedarPolicyEngine,
  DECISION_CACHE_ENTRIES,
  RESOURCE_TYPE,
} from './engine.js';
export { loadPolicySet } from './load.js';
export type {
  LoadedPolicy,
  LoadOptions,
  PolicyDirectoryValidation,
  PolicyFile,
  PolicySetFiles,
} from './types.js';
export { policySetVersion } from './version.js';
