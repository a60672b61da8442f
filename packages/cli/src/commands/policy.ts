import { validatePolicyDirectory } from '@countersign/policy';
import { loadConfig } from '@countersign/server';
import { isInitialised } from '../home.js';

export function policyValidate(home: string, dir?: string, schema?: string) {
  let policyDir = dir;
  let schemaFile = schema;
  if ((!policyDir || !schemaFile) && isInitialised(home)) {
    const config = loadConfig({ home, port: 0 });
    policyDir ??= config.policyDir;
    schemaFile ??= config.schemaFile;
  }
  if (!policyDir || !schemaFile)
    throw new Error('give --policies and --schema, or run inside an initialised data dir');
  return { dir: policyDir, schema: schemaFile, result: validatePolicyDirectory(policyDir, schemaFile) };
}
