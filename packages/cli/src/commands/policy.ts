import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  backtestCandidate,
  CountersignError,
  DEFAULT_RISK_SETTINGS,
  type EvaluationSettings,
  type PolicyTestCase,
  type PolicyTestResult,
  parseDuration,
  ResourceCatalog,
  runPolicyTests,
} from '@countersign/core';
import { policyEngineFromDirectory, validatePolicyDirectory } from '@countersign/policy';
import { backtestView, loadCatalogFile, loadConfig, windowParam } from '@countersign/server';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isInitialised } from '../home.js';
import { openLocal } from '../local.js';

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

/** Where a policy set and the facts its decisions depend on live. */
export interface PolicySetLocation {
  readonly policyDir: string;
  readonly schemaFile: string;
  readonly catalogFile: string;
  readonly settings: Omit<EvaluationSettings, 'catalog'>;
}

const DEFAULT_SETTINGS: Omit<EvaluationSettings, 'catalog'> = {
  risk: DEFAULT_RISK_SETTINGS,
  checkpoint: { defaultMaxTtlSeconds: 3600, defaultDeadlineSeconds: 900, fallbackReviewGroup: null },
  actionClasses: {},
  defaultTtlSeconds: 900,
};

/**
 * The data directory's policies, schema, catalog and decision settings; `--policies` alone
 * (outside a data directory) takes the schema and catalog next to the policy directory, as
 * in examples/.
 */
export function locatePolicySet(
  home: string,
  flags: { policies?: string | undefined; schema?: string | undefined; catalog?: string | undefined },
): PolicySetLocation {
  if (isInitialised(home)) {
    const c = loadConfig({ home, port: 0 });
    return {
      policyDir: flags.policies ? resolve(flags.policies) : c.policyDir,
      schemaFile: flags.schema ? resolve(flags.schema) : c.schemaFile,
      catalogFile: flags.catalog ? resolve(flags.catalog) : c.catalogFile,
      settings: {
        risk: c.risk,
        checkpoint: {
          defaultMaxTtlSeconds: c.defaultMaxTtlSeconds,
          defaultDeadlineSeconds: c.defaultDeadlineSeconds,
          fallbackReviewGroup: c.fallbackReviewGroup,
        },
        actionClasses: c.actionClasses,
        defaultTtlSeconds: c.defaultTtlSeconds,
      },
    };
  }
  if (!flags.policies) throw new Error('give --policies, or run inside an initialised data dir');
  const policyDir = resolve(flags.policies);
  return {
    policyDir,
    schemaFile: resolve(flags.schema ?? join(policyDir, '..', 'schema.cedarschema')),
    catalogFile: resolve(flags.catalog ?? join(policyDir, '..', 'catalog.yaml')),
    settings: DEFAULT_SETTINGS,
  };
}

const Duration = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseDuration(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)}` });
    return z.NEVER;
  }
});

const AgentSchema = z.strictObject({
  id: z.string().min(1),
  owner: z.string().min(1),
  boundary: z.string().default('acme'),
  environment: z.string().default('production'),
  trust_tier: z.string().default('standard'),
});

const CaseSchema = z.strictObject({
  name: z.string().min(1),
  request: z.strictObject({
    agent: AgentSchema.partial().optional(),
    action: z.string(),
    resource: z.string(),
    purpose: z.string().default('policy test'),
    task_id: z.string().default('policy-test'),
    context: z
      .strictObject({
        environment: z.string().optional(),
        on_behalf_of: z.string().optional(),
        tool_chain: z
          .array(
            z.strictObject({
              tool: z.string(),
              source: z.string().optional(),
              summary: z.string().optional(),
            }),
          )
          .optional(),
        model_output: z.string().optional(),
      })
      .default({}),
    ttl_seconds: z.number().int().positive().optional(),
  }),
  expect: z.strictObject({
    outcome: z.enum(['allow', 'deny', 'review']),
    review_group: z.string().nullable().optional(),
    policies: z.array(z.string()).optional(),
    obligations: z
      .strictObject({
        approvals: z.number().int().nonnegative().optional(),
        max_ttl: Duration.optional(),
        deadline: Duration.optional(),
        separation: z.array(z.string()).optional(),
      })
      .default({}),
  }),
});

const FileSchema = z.strictObject({
  /** Agent attributes every case starts from; a case's `request.agent` overrides them. */
  agent: AgentSchema.partial().optional(),
  cases: z.array(CaseSchema).min(1),
});

/** Reads every `*.yaml` / `*.yml` file in `dir` (sorted) as policy test cases. */
export function readPolicyTests(dir: string): PolicyTestCase[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new CountersignError('CS_CONFIG_INVALID', `no policy test directory at ${dir}`);
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && !f.startsWith('.'))
    .sort();
  if (files.length === 0) throw new CountersignError('CS_CONFIG_INVALID', `no *.yaml test files in ${dir}`);
  const cases: PolicyTestCase[] = [];
  for (const file of files) {
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(join(dir, file), 'utf8'));
    } catch (error) {
      throw new CountersignError(
        'CS_CONFIG_INVALID',
        `${file} is not valid YAML: ${(error as Error).message}`,
      );
    }
    const parsed = FileSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      throw new CountersignError('CS_CONFIG_INVALID', `${file}: ${issues.join('; ')}`);
    }
    for (const c of parsed.data.cases) {
      const agent = AgentSchema.safeParse({ ...parsed.data.agent, ...c.request.agent });
      if (!agent.success)
        throw new CountersignError(
          'CS_CONFIG_INVALID',
          `${file}: case ${JSON.stringify(c.name)}: the agent needs an id and an owner`,
        );
      const r = c.request;
      const o = c.expect.obligations;
      cases.push({
        name: c.name,
        source: file,
        agent: {
          id: agent.data.id,
          owner: agent.data.owner,
          boundary: agent.data.boundary,
          environment: agent.data.environment,
          trustTier: agent.data.trust_tier,
        },
        request: {
          action: r.action,
          resource: r.resource,
          intent: { purpose: r.purpose, task_id: r.task_id },
          context: r.context,
          ...(r.ttl_seconds === undefined ? {} : { ttl_seconds: r.ttl_seconds }),
        },
        expect: {
          outcome: c.expect.outcome,
          ...(c.expect.review_group === undefined ? {} : { reviewGroup: c.expect.review_group }),
          ...(c.expect.policies === undefined ? {} : { policies: c.expect.policies }),
          ...(o.approvals === undefined ? {} : { approvals: o.approvals }),
          ...(o.max_ttl === undefined ? {} : { maxTtlSeconds: o.max_ttl }),
          ...(o.deadline === undefined ? {} : { deadlineSeconds: o.deadline }),
          ...(o.separation === undefined ? {} : { separation: o.separation }),
        },
      });
    }
  }
  return cases;
}

export interface PolicyTestRun {
  readonly location: PolicySetLocation;
  readonly testDir: string;
  readonly version: string;
  readonly results: PolicyTestResult[];
}

/** `countersign policy test [dir]`: the cases in `dir` (default `<policies>/tests`) against the set. */
export function policyTest(
  home: string,
  testDir: string | undefined,
  flags: { policies?: string | undefined; schema?: string | undefined; catalog?: string | undefined },
): PolicyTestRun {
  const location = locatePolicySet(home, flags);
  const dir = testDir ? resolve(testDir) : join(location.policyDir, 'tests');
  const cases = readPolicyTests(dir);
  const engine = policyEngineFromDirectory(location.policyDir, location.schemaFile);
  const catalog = ResourceCatalog.from(loadCatalogFile(location.catalogFile), 'urn:countersign:uncatalogued');
  const results = runPolicyTests(cases, engine, { ...location.settings, catalog });
  return { location, testDir: dir, version: engine.version, results };
}

/** `countersign policy backtest --candidate <dir>`: the data directory's recent requests replayed. */
export async function policyBacktest(
  home: string,
  options: { candidate: string; since?: string | undefined; schema?: string | undefined; examples?: number },
): Promise<ReturnType<typeof backtestView>> {
  const sinceSeconds = windowParam(options.since, 7 * 86_400);
  const local = await openLocal(home);
  try {
    const schema = options.schema ? resolve(options.schema) : local.deps.config.schemaFile;
    const candidate = policyEngineFromDirectory(resolve(options.candidate), schema);
    const report = await backtestCandidate({
      ctx: local.deps.ctx,
      input: { candidate, sinceMs: sinceSeconds * 1000, examplesPerChange: options.examples ?? 3 },
    });
    return backtestView(report);
  } finally {
    await local.close();
  }
}

/** Plain-text backtest report: counts per outcome change, then examples. */
export function formatBacktest(r: ReturnType<typeof backtestView>): string {
  const lines = [
    `candidate ${r.candidate_version}`,
    `replayed ${r.replayed} requests (${r.skipped} skipped): ${r.unchanged} unchanged`,
    `reached a person: ${r.reviews_before} as recorded, ${r.reviews_after} under the candidate`,
  ];
  const keys = Object.keys(r.changes).sort();
  if (keys.length === 0) lines.push('no outcome would change');
  for (const key of keys) {
    lines.push(`${key.replace('->', ' -> ').padEnd(18)} ${r.changes[key as keyof typeof r.changes]}`);
    for (const e of r.examples[key] ?? []) {
      lines.push(
        `    ${e.request_id} ${e.agent_id} ${e.action} ${e.resource}${
          e.from_group || e.to_group ? ` [${e.from_group ?? '-'} -> ${e.to_group ?? '-'}]` : ''
        } (was ${e.recorded_status}; ${e.policies.join(', ') || 'no policy'})`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
