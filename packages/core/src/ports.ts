/**
 * The ports the domain talks through. Each is small and documented; `createServer(config)`
 * is the only place that wires real adapters to them.
 */
import type { ActionClass } from './types.js';

/** Time comes from here, never from Date.now() in the domain, so tests can move it. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export type CedarValue =
  | string
  | number
  | boolean
  | readonly CedarValue[]
  | { readonly [key: string]: CedarValue };

/** What the policy engine sees: the slice of facts that a decision needs, nothing more. */
export interface PolicyInput {
  readonly principal: { readonly id: string; readonly attrs: Readonly<Record<string, CedarValue>> };
  readonly action: ActionClass;
  readonly resource: { readonly id: string; readonly attrs: Readonly<Record<string, CedarValue>> };
  readonly context: Readonly<Record<string, CedarValue>>;
}

/** A policy that determined an evaluation, with its annotations as written. */
export interface EvaluatedPolicy {
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  readonly annotations: Readonly<Record<string, string>>;
}

export type PolicyEvaluation =
  | {
      readonly kind: 'evaluated';
      /** Cedar's own answer: `allow` iff some permit and no forbid was satisfied. */
      readonly decision: 'allow' | 'deny';
      /** Cedar's `diagnostics.reason`: the satisfied permits (allow) or forbids (deny). */
      readonly determining: readonly EvaluatedPolicy[];
    }
  | {
      /** Something went wrong: any error at all is a deny (Cedar skips erroring policies). */
      readonly kind: 'error';
      readonly message: string;
      readonly policyIds: readonly string[];
    };

/** The policy engine port. Implementations must never throw from `evaluate`: errors are a branch. */
export interface PolicyEngine {
  /** Content hash of the loaded policy set and schema. */
  readonly version: string;
  evaluate(input: PolicyInput): PolicyEvaluation;
}
