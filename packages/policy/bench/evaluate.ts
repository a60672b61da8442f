/**
 * Micro-benchmark: per-call `evaluate` time over the example policies, with one preparsed
 * set per action and with one set for everything.
 *   node --import tsx packages/policy/bench/evaluate.ts [calls]
 */
import { fileURLToPath } from 'node:url';
import type { ActionClass, PolicyInput } from '@countersign/core';
import { type CedarPolicyEngine, policyEngineFromDirectory } from '../src/index.js';

const dir = fileURLToPath(new URL('../../../examples/policies/', import.meta.url));
const schema = fileURLToPath(new URL('../../../examples/schema.cedarschema', import.meta.url));
const calls = Number(process.argv[2] ?? 10_000);

function input(
  action: ActionClass,
  uri: string,
  sensitivity: string,
  environment: string,
  owner: string,
): PolicyInput {
  return {
    principal: {
      id: 'agent-1',
      attrs: { owner: 'app', boundary: 'acme', environment: 'production', trust_tier: 'standard' },
    },
    action,
    resource: {
      id: uri,
      attrs: {
        uri,
        kind: uri.slice(0, uri.indexOf(':')),
        sensitivity,
        environment,
        owner,
        boundary: 'acme',
        catalogued: true,
      },
    },
    context: {
      action_name: action,
      risk_score: 20,
      risk_factors: ['action_class', 'sensitivity'],
      cross_boundary: false,
      tainted: false,
      ttl_seconds: 900,
    },
  };
}

const inputs: PolicyInput[] = [
  input('read', 'postgres://staging/app/orders', 'internal', 'staging', 'app'),
  input('write', 'postgres://prod/billing/invoices', 'confidential', 'production', 'billing'),
  input('export', 'secret://kms/prod-signing-key', 'restricted', 'production', 'security'),
  input('admin', 'k8s://prod/cluster/main', 'internal', 'production', 'platform'),
  input('share', 'postgres://staging/app/orders', 'internal', 'staging', 'app'),
];

function run(engine: CedarPolicyEngine, n: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const result = engine.evaluate(inputs[i % inputs.length]!);
    if (result.kind !== 'evaluated') throw new Error(result.message);
  }
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

const layouts: Array<[string, CedarPolicyEngine]> = [
  ['split by action', policyEngineFromDirectory(dir, schema, { splitByAction: true })],
  ['single set', policyEngineFromDirectory(dir, schema, { splitByAction: false })],
];
for (const [, engine] of layouts) run(engine, 2_000); // warm up
const samples = new Map<string, number[]>(layouts.map(([name]) => [name, []]));
for (let round = 0; round < 5; round++) {
  for (const [name, engine] of round % 2 === 0 ? layouts : [...layouts].reverse())
    samples.get(name)!.push(run(engine, calls));
}
for (const [name, us] of samples) {
  const sorted = [...us].sort((a, b) => a - b);
  console.log(
    `${name.padEnd(16)} median ${sorted[2]!.toFixed(1)} us/call  (rounds: ${us.map((u) => u.toFixed(1)).join(', ')})`,
  );
}
