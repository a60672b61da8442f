import { createHash } from 'node:crypto';
import type { PolicyFile } from './types.js';

/**
 * The policy set's version: `sha256:` and the lowercase hex SHA-256 of a canonical
 * serialisation of the files sorted by name, plus the schema text. The same files in any
 * order give the same version; any changed byte (a name, a policy, the schema) gives
 * another. JSON string encoding makes the serialisation injective: no choice of names
 * and texts can make two different inputs serialise alike.
 */
export function policySetVersion(policies: ReadonlyArray<PolicyFile>, schema: string): string {
  const sorted = [...policies].sort((a, b) => compareCodeUnits(a.name, b.name));
  const canonical = JSON.stringify({
    format: 'countersign-policy-set/1',
    policies: sorted.map((p) => [p.name, p.text]),
    schema,
  });
  return `sha256:${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
}

/** Plain code-unit order: locale-independent, so every machine sorts file names alike. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
