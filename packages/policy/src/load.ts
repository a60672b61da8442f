/**
 * Loading a policy set: split every file into policies, give each a stable id, check its
 * obligation annotations, validate everything against the schema (strict mode), and only
 * then build an engine. Any problem fails the whole load (fail closed), and the error lists
 * every problem found, each naming its file and policy.
 */
import {
  type DetailedError,
  type EntityUidJson,
  type PolicyJson,
  policySetTextToParts,
  policyToJson,
  schemaToJson,
  validate,
} from '@cedar-policy/cedar-wasm/nodejs';
import { ACTION_CLASSES, CountersignError, parseObligationAnnotations } from '@countersign/core';
import { ACTION_TYPE, CedarPolicyEngine } from './engine.js';
import type { LoadedPolicy, LoadOptions, PolicyFile, PolicySetFiles } from './types.js';
import { compareCodeUnits, policySetVersion } from './version.js';

const NAMESPACE = 'Countersign';
const ENTITY_TYPES = ['Agent', 'Resource'] as const;

interface Part {
  readonly text: string;
  /** Where the policy starts in its file (UTF-16 offset), or -1 when it could not be located. */
  readonly offset: number;
  readonly index: number;
}

interface SchemaFacts {
  readonly actions: ReadonlySet<string>;
  /** Whether any action is a member of another: then `action in [...]` can reach actions it does not name. */
  readonly hasActionGroups: boolean;
}

/**
 * Loads and validates a policy set. Throws `CountersignError('CS_POLICY_ERROR')` on any
 * parse or validation error, duplicate id, bad obligation annotation, or an empty set; the
 * error's `details.errors` lists every problem.
 */
export function loadPolicySet(files: PolicySetFiles, options: LoadOptions = {}): CedarPolicyEngine {
  if (files === null || typeof files !== 'object' || !Array.isArray(files.policies)) {
    throw new TypeError('loadPolicySet: expected { policies: Array<{ name, text }>, schema: string }');
  }
  if (typeof files.schema !== 'string')
    throw new TypeError('loadPolicySet: schema must be Cedar schema text');
  for (const file of files.policies) {
    if (typeof file?.name !== 'string' || typeof file.text !== 'string') {
      throw new TypeError('loadPolicySet: every policy file needs a string name and text');
    }
  }

  const problems: string[] = [];
  const schemaFacts = readSchema(files.schema, problems);

  const sortedFiles = [...files.policies].sort((a, b) => compareCodeUnits(a.name, b.name));
  for (let i = 1; i < sortedFiles.length; i++) {
    if (sortedFiles[i]!.name === sortedFiles[i - 1]!.name) {
      problems.push(`${sortedFiles[i]!.name}: the same file name is given twice`);
    }
  }

  const policies: LoadedPolicy[] = [];
  const jsonById = new Map<string, PolicyJson>();
  const partById = new Map<string, { file: PolicyFile; part: Part }>();
  for (const file of sortedFiles) {
    const parts = splitFile(file, problems);
    for (const part of parts) {
      const answer = policyToJson(part.text);
      if (answer.type === 'failure') {
        problems.push(`${where(file, part.offset)}: ${formatErrors(answer.errors)}`);
        continue;
      }
      const annotations = normaliseAnnotations(answer.json.annotations);
      const explicit = annotations.id;
      if (explicit !== undefined && explicit.trim() === '') {
        problems.push(`${where(file, part.offset)}: @id must not be empty`);
        continue;
      }
      const id = explicit ?? `${stem(file.name)}#${part.index}`;
      const clash = partById.get(id);
      if (clash !== undefined) {
        problems.push(
          `${where(file, part.offset)}: duplicate policy id ${JSON.stringify(id)} (also at ${where(clash.file, clash.part.offset)})`,
        );
        continue;
      }
      try {
        parseObligationAnnotations(id, annotations);
      } catch (error) {
        problems.push(`${where(file, part.offset)}: ${(error as Error).message}`);
      }
      partById.set(id, { file, part });
      jsonById.set(id, answer.json);
      policies.push(
        Object.freeze({
          id,
          file: file.name,
          index: part.index,
          effect: answer.json.effect,
          annotations,
          text: part.text,
        }),
      );
    }
  }
  if (policies.length === 0 && problems.length === 0) {
    problems.push(
      'the policy set holds no policies (everything would be denied): add at least one .cedar policy',
    );
  }

  if (schemaFacts !== null && policies.length > 0) {
    const staticPolicies: Record<string, string> = {};
    for (const p of policies) staticPolicies[p.id] = p.text;
    const answer = validate({
      schema: files.schema,
      policies: { staticPolicies },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') {
      problems.push(`validation failed: ${formatErrors(answer.errors)}`);
    } else {
      for (const { policyId, error } of answer.validationErrors) {
        const at = partById.get(policyId);
        const location =
          at === undefined ? 'policy set' : where(at.file, at.part.offset, at.part.text, error);
        problems.push(`${location}: policy ${JSON.stringify(policyId)}: ${formatError(error)}`);
      }
    }
  }

  if (problems.length > 0) {
    const summary =
      problems.length === 1 ? problems[0] : `${problems.length} problems: ${problems.join('; ')}`;
    throw new CountersignError('CS_POLICY_ERROR', `policy set rejected: ${summary}`, {
      details: { errors: problems },
    });
  }

  const version = policySetVersion(files.policies, files.schema);
  const split = options.splitByAction ?? true;
  return new CedarPolicyEngine({
    version,
    schema: files.schema,
    policies,
    actionScopes: split ? actionScopes(policies, jsonById, schemaFacts!) : null,
  });
}

/** The problems a failed load reported (for `policy validate`), or the message alone. */
export function loadProblems(error: CountersignError): string[] {
  const errors = error.details?.errors;
  return Array.isArray(errors) && errors.every((e) => typeof e === 'string') ? [...errors] : [error.message];
}

function readSchema(schema: string, problems: string[]): SchemaFacts | null {
  const answer = schemaToJson(schema);
  if (answer.type === 'failure') {
    problems.push(`schema: ${formatErrors(answer.errors)}`);
    return null;
  }
  const namespace = answer.json[NAMESPACE];
  if (namespace === undefined) {
    problems.push(`schema: it must declare namespace ${NAMESPACE}`);
    return null;
  }
  const missing = [
    ...ENTITY_TYPES.filter((t) => namespace.entityTypes[t] === undefined).map((t) => `entity ${t}`),
    ...ACTION_CLASSES.filter((a) => namespace.actions[a] === undefined).map((a) => `action ${a}`),
  ];
  if (missing.length > 0) {
    problems.push(`schema: namespace ${NAMESPACE} must declare ${missing.join(', ')}`);
    return null;
  }
  const actions = Object.values(namespace.actions);
  return {
    actions: new Set(Object.keys(namespace.actions)),
    hasActionGroups: actions.some((a) => (a.memberOf?.length ?? 0) > 0),
  };
}

/**
 * Splits a file into its policies, in source order. `policySetTextToParts` returns them
 * sorted by the ids the parser gave them (`policy0`, `policy1`, `policy10`, `policy2`...,
 * compared as strings), so that order is undone here and then checked against the text; the
 * index is what `<file>#<index>` ids rely on, so it must not depend on how many policies
 * follow.
 */
function splitFile(file: PolicyFile, problems: string[]): Part[] {
  const answer = policySetTextToParts(file.text);
  if (answer.type === 'failure') {
    for (const error of answer.errors) problems.push(`${whereInFile(file, error)}: ${formatError(error)}`);
    return [];
  }
  if (answer.policy_templates.length > 0) {
    problems.push(`${file.name}: policy templates (?principal, ?resource) are not supported`);
  }
  const texts = answer.policies;
  const parserIds = texts.map((_, i) => `policy${i}`).sort(compareCodeUnits);
  const ordered: string[] = new Array(texts.length);
  texts.forEach((text, k) => {
    ordered[Number(parserIds[k]!.slice('policy'.length))] = text;
  });
  const offsets: number[] = [];
  let cursor = 0;
  for (const text of ordered) {
    const at = file.text.indexOf(text, cursor);
    if (at < 0) break;
    offsets.push(at);
    cursor = at + text.length;
  }
  if (offsets.length !== ordered.length) {
    // The parser's ordering is not what we expected: fall back to where each text first occurs.
    const located = texts.map((text) => ({ text, offset: file.text.indexOf(text) }));
    located.sort((a, b) => a.offset - b.offset);
    return located.map((p, index) => ({ ...p, index }));
  }
  return ordered.map((text, index) => ({ text, offset: offsets[index]!, index }));
}

/**
 * Which actions each policy can apply to, from its action scope: `== A` reaches A, `in [A, B]`
 * reaches A and B (when the schema has no action groups), anything else reaches every
 * action. Putting a policy in too many sets is harmless (Cedar still checks its scope);
 * leaving it out of one would be a silent hole, so every doubt goes to "every action".
 */
function actionScopes(
  policies: readonly LoadedPolicy[],
  jsonById: ReadonlyMap<string, PolicyJson>,
  schema: SchemaFacts,
): Map<string, string[]> {
  const scopes = new Map<string, string[]>([...schema.actions].map((a) => [a, []]));
  for (const policy of policies) {
    const reach = actionsReached(jsonById.get(policy.id)!, schema);
    for (const [action, ids] of scopes) if (reach === null || reach.has(action)) ids.push(policy.id);
  }
  return scopes;
}

function actionsReached(json: PolicyJson, schema: SchemaFacts): ReadonlySet<string> | null {
  const scope = json.action;
  let named: EntityUidJson[];
  if (scope.op === '==' && 'entity' in scope) named = [scope.entity];
  else if (scope.op === 'in' && !schema.hasActionGroups)
    named = 'entities' in scope ? scope.entities : [scope.entity];
  else return null;
  const reached = new Set<string>();
  for (const ref of named) {
    const uid = '__entity' in ref ? ref.__entity : ref;
    if (uid.type !== ACTION_TYPE || !schema.actions.has(uid.id)) return null;
    reached.add(uid.id);
  }
  return reached;
}

/** Cedar writes an annotation without a value (`@review`) as null; its value is "" in Cedar. */
function normaliseAnnotations(
  raw: Readonly<Record<string, string | null>> | undefined,
): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw ?? {})) out[key] = value ?? '';
  return Object.freeze(out);
}

function stem(name: string): string {
  return name.endsWith('.cedar') ? name.slice(0, -'.cedar'.length) : name;
}

function formatError(error: DetailedError): string {
  return error.help ? `${error.message} (${error.help})` : error.message;
}

function formatErrors(errors: readonly DetailedError[]): string {
  return errors.length === 0 ? 'unknown error' : errors.map(formatError).join('; ');
}

/** `file:line:col` for a policy starting at `offset`, optionally moved to an error inside it. */
function where(file: PolicyFile, offset: number, policyText?: string, error?: DetailedError): string {
  if (offset < 0) return file.name;
  const start = error?.sourceLocations?.[0]?.start;
  const inside = policyText !== undefined && start !== undefined ? bytePrefix(policyText, start) : '';
  return `${file.name}:${lineCol(file.text.slice(0, offset) + inside)}`;
}

/** `file:line:col` for an error whose location counts from the start of the file. */
function whereInFile(file: PolicyFile, error: DetailedError): string {
  const start = error.sourceLocations?.[0]?.start;
  return start === undefined ? file.name : `${file.name}:${lineCol(bytePrefix(file.text, start))}`;
}

/** Cedar's source offsets count UTF-8 bytes. */
function bytePrefix(text: string, bytes: number): string {
  return Buffer.from(text, 'utf8').subarray(0, bytes).toString('utf8');
}

function lineCol(prefix: string): string {
  const lines = prefix.split('\n');
  return `${lines.length}:${lines[lines.length - 1]!.length + 1}`;
}
