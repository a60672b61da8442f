/**
 * Configuration: one YAML file in the data dir (`COUNTERSIGN_HOME`, default `.countersign`),
 * validated strictly. Paths in it are relative to the data dir.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import {
  type CatalogEntryInput,
  CountersignError,
  DEFAULT_RISK_SETTINGS,
  parseDuration,
  type RiskSettings,
} from '@countersign/core';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export const CONFIG_FILE = 'countersign.yaml';
export const DEFAULT_PORT = 8787;

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.COUNTERSIGN_HOME ?? '.countersign');
}

const duration = z.string().transform((s, ctx) => {
  try {
    return parseDuration(s);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const weight = z.number().int().min(0).max(100);

const ConfigSchema = z.strictObject({
  dev: z.boolean().default(false),
  issuer: z.url().optional(),
  store: z
    .strictObject({
      sqlite: z.strictObject({ file: z.string().default('countersign.db') }).optional(),
      postgres: z
        .strictObject({
          // Optional here: DATABASE_URL may carry it (and keep the password out of this file).
          url: z
            .string()
            .regex(/^postgres(ql)?:\/\/\S+$/, 'a postgres:// or postgresql:// connection URL')
            .optional(),
          pool_max: z.number().int().min(1).max(500).default(10),
          acquire_timeout: duration.default(2),
          statement_timeout: duration.default(5),
        })
        .optional(),
    })
    .refine((s) => !(s.sqlite && s.postgres), 'choose one store: sqlite or postgres')
    .default({}),
  events: z
    .strictObject({ poll_interval: duration.default(1) })
    .refine((e) => e.poll_interval >= 1 && e.poll_interval <= 60, 'poll_interval must be 1s to 60s')
    .default({ poll_interval: 1 }),
  policies: z
    .strictObject({ dir: z.string().default('policies'), schema: z.string().default('schema.cedarschema') })
    .default({ dir: 'policies', schema: 'schema.cedarschema' }),
  catalog: z.string().default('catalog.yaml'),
  signing_key_file: z.string().default('keys/signing-key.jwk'),
  checkpoint: z
    .strictObject({
      default_max_ttl: duration.default(3600),
      default_deadline: duration.default(900),
      fallback_review_group: z.string().nullable().default(null),
    })
    .default({ default_max_ttl: 3600, default_deadline: 900, fallback_review_group: null }),
  credentials: z.strictObject({ default_ttl: duration.default(900) }).default({ default_ttl: 900 }),
  action_classes: z
    .record(z.string(), z.enum(['read', 'write', 'delete', 'admin', 'export', 'share', 'other']))
    .default({}),
  risk: z
    .strictObject({
      tainted_tools: z.array(z.string()).optional(),
      production_environments: z.array(z.string()).optional(),
      long_ttl: duration.optional(),
      weights: z
        .strictObject({
          action: z
            .record(z.enum(['read', 'write', 'delete', 'admin', 'export', 'share', 'other']), weight)
            .optional(),
          sensitivity: z
            .record(z.enum(['public', 'internal', 'confidential', 'restricted']), weight)
            .optional(),
          production: weight.optional(),
          cross_boundary: weight.optional(),
          tainted_sensitive: weight.optional(),
          tainted: weight.optional(),
          long_ttl: weight.optional(),
          uncatalogued: weight.optional(),
          suspicious_text: weight.optional(),
        })
        .optional(),
    })
    .default({}),
  introspection: z
    .strictObject({
      resource_servers: z
        .array(z.strictObject({ id: z.string().min(1), secret_sha256: z.string().regex(/^[0-9a-f]{64}$/) }))
        .default([]),
    })
    .default({ resource_servers: [] }),
  reaper_interval: duration.default(5),
  notifications: z
    .strictObject({
      webhooks: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
            url: z
              .url()
              .refine(
                (u) =>
                  u.startsWith('https://') || /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?\//.test(u),
                'webhook URLs must be https (plain http only to localhost)',
              ),
            secret: z
              .string()
              .regex(/^whsec_[A-Za-z0-9+/=]{16,}$/, 'a Standard Webhooks secret: whsec_<base64>'),
          }),
        )
        .default([]),
    })
    .default({ webhooks: [] }),
});

export type RawConfig = z.infer<typeof ConfigSchema>;

export interface ServerConfig {
  readonly home: string;
  readonly dev: boolean;
  /** Our issuer identifier and external base URL; agents' assertions must name it as `aud`. */
  readonly issuer: string;
  /** The SQLite file (used when `postgres` is null). */
  readonly sqliteFile: string;
  /** PostgreSQL, when `store.postgres` or DATABASE_URL selects it; null for SQLite. */
  readonly postgres: PostgresConfig | null;
  /** How often each instance reads the audit chain for request changes made elsewhere (ms). */
  readonly eventsPollMs: number;
  readonly policyDir: string;
  readonly schemaFile: string;
  readonly catalogFile: string;
  readonly signingKeyFile: string;
  readonly defaultMaxTtlSeconds: number;
  readonly defaultDeadlineSeconds: number;
  readonly fallbackReviewGroup: string | null;
  readonly defaultTtlSeconds: number;
  readonly actionClasses: Readonly<Record<string, string>>;
  readonly risk: RiskSettings;
  readonly resourceServers: ReadonlyArray<{ id: string; secretSha256: string }>;
  readonly reaperIntervalSeconds: number;
  readonly webhooks: ReadonlyArray<{ name: string; url: string; secret: string }>;
}

export interface PostgresConfig {
  readonly url: string;
  /** Where the URL came from (for logs: the URL itself may hold a password). */
  readonly source: 'countersign.yaml' | 'DATABASE_URL';
  readonly poolMax: number;
  readonly acquireTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

/**
 * PostgreSQL when `store.postgres` is configured or DATABASE_URL is set, else SQLite. A URL in
 * the file wins over DATABASE_URL, and DATABASE_URL wins over a `store.sqlite` section (the
 * environment overrides the file, so a directory made by `countersign init` runs on
 * PostgreSQL by setting DATABASE_URL alone). The start-up log names the store in use.
 */
function resolvePostgres(
  store: RawConfig['store'],
  env: NodeJS.ProcessEnv,
  file: string,
): PostgresConfig | null {
  const fromEnv = env.DATABASE_URL?.trim() || undefined;
  if (!store.postgres && !fromEnv) return null;
  const url = store.postgres?.url ?? fromEnv;
  if (!url) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `${file}: store.postgres needs a url, or DATABASE_URL in the environment`,
    );
  }
  if (!/^postgres(ql)?:\/\/\S+$/.test(url)) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      'DATABASE_URL must be a postgres:// or postgresql:// URL',
    );
  }
  return {
    url,
    source: store.postgres?.url ? 'countersign.yaml' : 'DATABASE_URL',
    poolMax: store.postgres?.pool_max ?? 10,
    acquireTimeoutMs: (store.postgres?.acquire_timeout ?? 2) * 1000,
    statementTimeoutMs: (store.postgres?.statement_timeout ?? 5) * 1000,
  };
}

function mergeWeights(w: RawConfig['risk']['weights']): RiskSettings['weights'] {
  const d = DEFAULT_RISK_SETTINGS.weights;
  return {
    action: { ...d.action, ...w?.action },
    sensitivity: { ...d.sensitivity, ...w?.sensitivity },
    production: w?.production ?? d.production,
    crossBoundary: w?.cross_boundary ?? d.crossBoundary,
    taintedSensitive: w?.tainted_sensitive ?? d.taintedSensitive,
    tainted: w?.tainted ?? d.tainted,
    longTtl: w?.long_ttl ?? d.longTtl,
    uncatalogued: w?.uncatalogued ?? d.uncatalogued,
    suspiciousText: w?.suspicious_text ?? d.suspiciousText,
  };
}

export function loadConfig(options: {
  home: string;
  port: number;
  issuer?: string;
  dev?: boolean;
  /** Where DATABASE_URL is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
}): ServerConfig {
  const file = join(options.home, CONFIG_FILE);
  if (!existsSync(file)) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `no ${CONFIG_FILE} in ${options.home}: run \`countersign init\` first`,
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8')) ?? {};
  } catch (error) {
    throw new CountersignError('CS_CONFIG_INVALID', `${file} is not valid YAML: ${(error as Error).message}`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new CountersignError('CS_CONFIG_INVALID', `${file}: ${issues}`);
  }
  const c = parsed.data;
  const at = (p: string) => (isAbsolute(p) ? p : join(options.home, p));
  return {
    home: options.home,
    dev: options.dev ?? c.dev,
    issuer: (options.issuer ?? c.issuer ?? `http://localhost:${options.port}`).replace(/\/+$/, ''),
    sqliteFile: at(c.store.sqlite?.file ?? 'countersign.db'),
    postgres: resolvePostgres(c.store, options.env ?? process.env, file),
    eventsPollMs: c.events.poll_interval * 1000,
    policyDir: at(c.policies.dir),
    schemaFile: at(c.policies.schema),
    catalogFile: at(c.catalog),
    signingKeyFile: at(c.signing_key_file),
    defaultMaxTtlSeconds: c.checkpoint.default_max_ttl,
    defaultDeadlineSeconds: c.checkpoint.default_deadline,
    fallbackReviewGroup: c.checkpoint.fallback_review_group,
    defaultTtlSeconds: c.credentials.default_ttl,
    actionClasses: c.action_classes,
    risk: {
      ...DEFAULT_RISK_SETTINGS,
      weights: mergeWeights(c.risk.weights),
      taintedTools: c.risk.tainted_tools ?? DEFAULT_RISK_SETTINGS.taintedTools,
      productionEnvironments: c.risk.production_environments ?? DEFAULT_RISK_SETTINGS.productionEnvironments,
      longTtlSeconds: c.risk.long_ttl ?? DEFAULT_RISK_SETTINGS.longTtlSeconds,
    },
    resourceServers: c.introspection.resource_servers.map((r) => ({
      id: r.id,
      secretSha256: r.secret_sha256,
    })),
    reaperIntervalSeconds: c.reaper_interval,
    webhooks: c.notifications.webhooks,
  };
}

const CatalogSchema = z.strictObject({
  resources: z.array(
    z.strictObject({
      pattern: z.string(),
      sensitivity: z.string(),
      environment: z.string(),
      owner: z.string(),
      boundary: z.string(),
      audience: z.string().optional(),
    }),
  ),
});

export function loadCatalogFile(file: string): CatalogEntryInput[] {
  if (!existsSync(file)) throw new CountersignError('CS_CONFIG_INVALID', `catalog file not found: ${file}`);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CountersignError('CS_CONFIG_INVALID', `${file} is not valid YAML: ${(error as Error).message}`);
  }
  const parsed = CatalogSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data.resources;
}
