/** Loading a policy set from disk: every `*.cedar` file in one directory plus a schema file. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CountersignError, isCountersignError } from '@countersign/core';
import type { CedarPolicyEngine } from './engine.js';
import { loadPolicySet, loadProblems } from './load.js';
import type { LoadOptions, PolicyDirectoryValidation, PolicySetFiles } from './types.js';
import { compareCodeUnits } from './version.js';

/**
 * Reads the `*.cedar` files directly in `dir` (not in subdirectories; dot files skipped;
 * symlinks followed, as Kubernetes ConfigMap mounts use them), sorted by name, and the
 * schema at `schemaPath`. A file that cannot be read is a `CS_POLICY_ERROR`.
 */
export function readPolicyDirectory(dir: string, schemaPath: string): PolicySetFiles {
  try {
    const names = readdirSync(dir)
      .filter((name) => name.endsWith('.cedar') && !name.startsWith('.'))
      .filter((name) => statSync(join(dir, name)).isFile())
      .sort(compareCodeUnits);
    return {
      policies: names.map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') })),
      schema: readFileSync(schemaPath, 'utf8'),
    };
  } catch (error) {
    throw new CountersignError(
      'CS_POLICY_ERROR',
      `cannot read policies from ${dir} (schema ${schemaPath}): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/** Reads a policy directory and loads it; throws `CS_POLICY_ERROR` like `loadPolicySet`. */
export function policyEngineFromDirectory(
  dir: string,
  schemaPath: string,
  options?: LoadOptions,
): CedarPolicyEngine {
  return loadPolicySet(readPolicyDirectory(dir, schemaPath), options);
}

/** For `countersign policy validate`: never throws for a bad policy set, lists every problem instead. */
export function validatePolicyDirectory(dir: string, schemaPath: string): PolicyDirectoryValidation {
  try {
    const engine = policyEngineFromDirectory(dir, schemaPath);
    return { ok: true, version: engine.version, policyCount: engine.policyCount };
  } catch (error) {
    if (isCountersignError(error, 'CS_POLICY_ERROR')) return { ok: false, errors: loadProblems(error) };
    throw error;
  }
}
