/**
 * The Cedar adapter behind core's `PolicyEngine` port. Policies are preparsed once at load;
 * each call passes only the two entities a decision needs and fails closed on any error.
 */

import { randomUUID } from 'node:crypto';
import {
  type AuthorizationAnswer,
  type Context,
  type EntityJson,
  type EntityUidJson,
  preparsePolicySet,
  preparseSchema,
  statefulIsAuthorized,
} from '@cedar-policy/cedar-wasm/nodejs';
import type { EvaluatedPolicy, PolicyEngine, PolicyEvaluation, PolicyInput } from '@countersign/core';
import { CountersignError } from '@countersign/core';
import type { LoadedPolicy } from './types.js';

export const AGENT_TYPE = 'Countersign::Agent';
export const RESOURCE_TYPE = 'Countersign::Resource';
export const ACTION_TYPE = 'Countersign::Action';

/** What the loader hands the engine: a checked, validated policy set. */
export interface PreparedPolicySet {
  readonly version: string;
  readonly schema: string;
  readonly policies: readonly LoadedPolicy[];
  /** Per action, the ids of the policies that can apply to it; null evaluates every policy for every action. */
  readonly actionScopes: ReadonlyMap<string, readonly string[]> | null;
}

/**
 * The wasm module keeps preparsed sets in one table keyed by name, for the life of the
 * process (there is no way to drop one). Every engine instance gets names no other instance
 * can have, even when two copies of this module share one wasm instance (test isolation,
 * hot reload): a random UUID, not a module-level counter.
 */
function uniquePrefix(version: string): string {
  return `countersign/${version.slice('sha256:'.length, 'sha256:'.length + 16)}/${randomUUID()}`;
}

/**
 * Decisions remembered per loaded policy set. Cedar is a pure function of (policies, schema,
 * request, entities): the same input under the same loaded set always gets the same answer,
 * and a new set (hot reload) is a new engine with an empty cache. Routine traffic repeats
 * itself (the same agent reading the same table), and a remembered answer skips ~130 us of
 * WASM marshalling. Bounded, oldest-first eviction; errors are never remembered.
 */
export const DECISION_CACHE_ENTRIES = 8192;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function policyError(message: string, policyIds: readonly string[] = []): PolicyEvaluation {
  return { kind: 'error', message, policyIds };
}

export class CedarPolicyEngine implements PolicyEngine {
  /** `sha256:` plus the content hash of the policy files and the schema. */
  readonly version: string;
  /** Every loaded policy, in file-name then source order. */
  readonly policies: readonly LoadedPolicy[];
  readonly #evaluated: ReadonlyMap<string, EvaluatedPolicy>;
  readonly #schemaName: string;
  readonly #allSetId: string;
  readonly #setIdByAction: ReadonlyMap<string, string>;
  readonly #cache = new Map<string, PolicyEvaluation>();
  #cacheHits = 0;
  #cacheMisses = 0;

  /** Use `loadPolicySet`: this constructor trusts that its input was parsed and validated. */
  constructor(prepared: PreparedPolicySet) {
    this.version = prepared.version;
    this.policies = Object.freeze([...prepared.policies]);
    this.#evaluated = new Map(
      prepared.policies.map((p) => [
        p.id,
        Object.freeze({ id: p.id, effect: p.effect, annotations: p.annotations }),
      ]),
    );
    const prefix = uniquePrefix(prepared.version);
    const textById = new Map(prepared.policies.map((p) => [p.id, p.text]));
    const preparse = (setId: string, ids: readonly string[]): void => {
      const staticPolicies: Record<string, string> = {};
      for (const id of ids) staticPolicies[id] = textById.get(id)!;
      const answer = preparsePolicySet(setId, { staticPolicies });
      if (answer.type === 'failure') {
        throw new CountersignError(
          'CS_POLICY_ERROR',
          `cannot preparse the policy set: ${answer.errors.map((e) => e.message).join('; ')}`,
        );
      }
    };

    this.#schemaName = `${prefix}/schema`;
    const schemaAnswer = preparseSchema(this.#schemaName, prepared.schema);
    if (schemaAnswer.type === 'failure') {
      throw new CountersignError(
        'CS_POLICY_ERROR',
        `cannot preparse the schema: ${schemaAnswer.errors.map((e) => e.message).join('; ')}`,
      );
    }
    this.#allSetId = `${prefix}/*`;
    preparse(
      this.#allSetId,
      prepared.policies.map((p) => p.id),
    );
    const byAction = new Map<string, string>();
    for (const [action, ids] of prepared.actionScopes ?? []) {
      const setId = `${prefix}/action/${action}`;
      preparse(setId, ids);
      byAction.set(action, setId);
    }
    this.#setIdByAction = byAction;
  }

  get policyCount(): number {
    return this.policies.length;
  }

  /**
   * Evaluates one request. Never throws: any failure, and any policy that errored during
   * evaluation, is the `error` branch, which the checkpoint turns into a deny. Cedar itself
   * skips an erroring policy and answers from the rest, which could drop a forbid and let a
   * permit through, so a partial answer is never returned.
   */
  evaluate(input: PolicyInput): PolicyEvaluation {
    // The whole input is the key: JSON text is injective over the JSON values a PolicyInput
    // holds, so two inputs share an entry only when Cedar would see the same request.
    let key: string | null = null;
    try {
      key = JSON.stringify(input);
    } catch {
      key = null; // not JSON (a bug upstream): evaluate uncached, Cedar will refuse it
    }
    if (key !== null) {
      const remembered = this.#cache.get(key);
      if (remembered !== undefined) {
        this.#cacheHits++;
        return remembered;
      }
      this.#cacheMisses++;
    }
    let result: PolicyEvaluation;
    try {
      result = this.#interpret(this.#authorize(input));
    } catch (error) {
      return policyError(`policy evaluation failed: ${describe(error)}`);
    }
    if (key !== null && result.kind === 'evaluated') {
      if (this.#cache.size >= DECISION_CACHE_ENTRIES) {
        this.#cache.delete(this.#cache.keys().next().value as string);
      }
      this.#cache.set(key, result);
    }
    return result;
  }

  /** How often the decision cache answered (for metrics and tests). */
  cacheStats(): { hits: number; misses: number; entries: number } {
    return { hits: this.#cacheHits, misses: this.#cacheMisses, entries: this.#cache.size };
  }

  #authorize(input: PolicyInput): AuthorizationAnswer {
    const action = input.action;
    const principal: EntityUidJson = { type: AGENT_TYPE, id: input.principal.id };
    const resource: EntityUidJson = { type: RESOURCE_TYPE, id: input.resource.id };
    // Only the two entities a decision reads: marshalling dominates Cedar's cost.
    const entities: EntityJson[] = [
      { uid: principal, attrs: input.principal.attrs as EntityJson['attrs'], parents: [] },
      { uid: resource, attrs: input.resource.attrs as EntityJson['attrs'], parents: [] },
    ];
    return statefulIsAuthorized({
      principal,
      action: { type: ACTION_TYPE, id: action },
      resource,
      context: input.context as Context,
      entities,
      // Request validation makes a missing, extra or wrong-typed attribute an error (fail
      // closed) instead of a policy silently not matching.
      preparsedSchemaName: this.#schemaName,
      validateRequest: true,
      preparsedPolicySetId: this.#setIdByAction.get(action) ?? this.#allSetId,
    });
  }

  #interpret(answer: AuthorizationAnswer): PolicyEvaluation {
    if (answer.type === 'failure') {
      const messages = answer.errors.map((e) => e.message);
      return policyError(messages.length > 0 ? messages.join('; ') : 'Cedar refused the request');
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      const ids = [...new Set(diagnostics.errors.map((e) => e.policyId))].sort();
      return policyError(
        diagnostics.errors.map((e) => `policy ${e.policyId} errored: ${e.error.message}`).join('; '),
        ids,
      );
    }
    // Cross-check Cedar's answer against what we loaded; anything unexpected fails closed.
    const expectedEffect = decision === 'allow' ? 'permit' : 'forbid';
    const determining: EvaluatedPolicy[] = [];
    for (const id of diagnostics.reason) {
      const policy = this.#evaluated.get(id);
      if (policy === undefined || policy.effect !== expectedEffect) {
        return policyError(`Cedar named an unexpected determining policy ${JSON.stringify(id)}`, [id]);
      }
      determining.push(policy);
    }
    if (decision === 'allow' && determining.length === 0) {
      return policyError('Cedar allowed with no determining permit');
    }
    // Cedar reports a set in no particular order: sort so equal inputs give equal values.
    determining.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // Frozen: the same value may answer many requests from the decision cache.
    return Object.freeze({ kind: 'evaluated', decision, determining: Object.freeze(determining) });
  }
}
