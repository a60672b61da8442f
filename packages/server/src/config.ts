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
import {
  ASYMMETRIC_ALGORITHMS,
  defaultTokenTypes,
  normalizeTyp,
  type TrustedIssuerConfig,
} from './identity/federated.js';
import { type IssuerConfig, IssuersConfigSchema } from './issuers/config.js';

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

const httpUrl = z
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'an http(s) URL')
  .refine(
    (u) => u.startsWith('https://') || /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(\/|$)/.test(u),
    'https (plain http only to localhost)',
  );

/** One trusted workload-token issuer (docs/configuration.md, docs/identity.md). */
const TrustedIssuerSchema = z
  .strictObject({
    issuer: httpUrl,
    kind: z.enum(['oidc', 'kubernetes', 'github', 'spiffe']),
    jwks_uri: httpUrl.optional(),
    discovery: z.literal(true).optional(),
    jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    spiffe_bundle: z.string().min(1).optional(),
    audience: z.string().min(1).max(512),
    // RFC 8725 §3.1: an explicit allow-list; asymmetric only (no HS*, no none).
    algorithms: z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1),
    token_types: z.array(z.string().min(1).nullable()).min(1).optional(),
    subject_prefix: z.string().min(1).optional(),
    claims: z.record(z.string().min(1), z.union([z.string(), z.array(z.string()).min(1)])).default({}),
    namespaces: z.array(z.string().min(1)).min(1).optional(),
    trust_domain: z
      .string()
      .regex(/^[a-z0-9.-]{1,255}$/, 'a SPIFFE trust domain: lowercase letters, digits, dots, dashes')
      .optional(),
    require_dpop: z.boolean().default(false),
    // THREATS.md G1: 60 s by default, never more than 120 s.
    clock_skew: duration.default(60).refine((s) => s <= 120, 'clock_skew is at most 120s'),
    max_token_lifetime: duration.default(86_400),
    jwks_cache: z
      .strictObject({
        max_age: duration.default(600),
        cooldown: duration.default(30),
        timeout: duration.default(5),
      })
      .default({ max_age: 600, cooldown: 30, timeout: 5 }),
  })
  .superRefine((t, ctx) => {
    const sources = [t.jwks_uri, t.discovery, t.jwks, t.spiffe_bundle].filter((v) => v !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'exactly one of jwks_uri, discovery, jwks or spiffe_bundle',
      });
    }
    if (t.kind === 'spiffe' && !t.trust_domain)
      ctx.addIssue({ code: 'custom', message: 'a spiffe issuer needs trust_domain' });
    if (t.kind !== 'spiffe' && t.trust_domain)
      ctx.addIssue({ code: 'custom', message: 'trust_domain is for spiffe issuers only' });
    if (t.kind !== 'kubernetes' && t.namespaces)
      ctx.addIssue({ code: 'custom', message: 'namespaces is for kubernetes issuers only' });
    if (t.spiffe_bundle && t.kind !== 'spiffe')
      ctx.addIssue({ code: 'custom', message: 'spiffe_bundle is for spiffe issuers only' });
    for (const k of t.jwks?.keys ?? []) {
      if ('d' in k || k.kty === 'oct')
        ctx.addIssue({ code: 'custom', message: 'inline jwks must hold public keys only' });
    }
    for (const typ of t.token_types ?? []) {
      if (typ !== null && ['dpop+jwt', 'countersign-receipt+jwt'].includes(normalizeTyp(typ) ?? ''))
        ctx.addIssue({ code: 'custom', message: `token type ${typ} is never a workload token` });
    }
  });

/**
 * Pending reviews one agent may have at once (THREATS.md D-group, OWASP Agentic T10): enough
 * for an agent working several tasks, far below what would bury a reviewer group.
 */
export const DEFAULT_MAX_PENDING = 10;

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
    .strictObject({
      dir: z.string().default('policies'),
      schema: z.string().default('schema.cedarschema'),
      // Shadow mode: evaluated beside the active set when this directory exists, never enforced.
      candidate: z.string().nullable().default('policies/candidate'),
      // Reviewers in this group may adopt suggested policies (with a passkey assertion).
      admin_group: z.string().default('policy-admins'),
    })
    .default({
      dir: 'policies',
      schema: 'schema.cedarschema',
      candidate: 'policies/candidate',
      admin_group: 'policy-admins',
    }),
  catalog: z.string().default('catalog.yaml'),
  signing_key_file: z.string().default('keys/signing-key.jwk'),
  checkpoint: z
    .strictObject({
      default_max_ttl: duration.default(3600),
      default_deadline: duration.default(900),
      fallback_review_group: z.string().nullable().default(null),
      max_pending_per_agent: z.number().int().min(1).max(100_000).nullable().default(DEFAULT_MAX_PENDING),
    })
    .default({
      default_max_ttl: 3600,
      default_deadline: 900,
      fallback_review_group: null,
      max_pending_per_agent: DEFAULT_MAX_PENDING,
    }),
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
  identity: z
    .strictObject({ trusted_issuers: z.array(TrustedIssuerSchema).default([]) })
    .default({ trusted_issuers: [] }),
  tasks: z.strictObject({ idle_timeout: duration.nullable().default(null) }).default({ idle_timeout: null }),
  issuers: IssuersConfigSchema,
  secrets: z
    .strictObject({ master_key_file: z.string().nullable().default(null) })
    .default({ master_key_file: null }),
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
  /** The shadow candidate's directory (used only when it exists); null: shadow mode off. */
  readonly candidatePolicyDir: string | null;
  /** The reviewer group whose members may adopt suggested policies. */
  readonly policyAdminGroup: string;
  readonly catalogFile: string;
  readonly signingKeyFile: string;
  readonly defaultMaxTtlSeconds: number;
  readonly defaultDeadlineSeconds: number;
  readonly fallbackReviewGroup: string | null;
  /** The most pending reviews one agent may have; null: no cap. */
  readonly maxPendingPerAgent: number | null;
  readonly defaultTtlSeconds: number;
  readonly actionClasses: Readonly<Record<string, string>>;
  readonly risk: RiskSettings;
  readonly resourceServers: ReadonlyArray<{ id: string; secretSha256: string }>;
  readonly reaperIntervalSeconds: number;
  /** A task that heartbeats and then falls silent this long is abandoned; null: never. */
  readonly taskIdleTimeoutSeconds: number | null;
  /** Named credential issuers besides the built-in `access_token` (docs/credentials.md). */
  readonly issuers: Readonly<Record<string, IssuerConfig>>;
  /** The sealed secrets' master key file (0600); COUNTERSIGN_MASTER_KEY wins when set. */
  readonly masterKeyFile: string | null;
  readonly webhooks: ReadonlyArray<{ name: string; url: string; secret: string }>;
  /** Federated workload-token issuers; empty: private-key JWT only. */
  readonly trustedIssuers: readonly TrustedIssuerConfig[];
}

function trustedIssuer(
  t: RawConfig['identity']['trusted_issuers'][number],
  at: (p: string) => string,
): TrustedIssuerConfig {
  return {
    issuer: t.issuer,
    kind: t.kind,
    keys: t.jwks_uri
      ? { type: 'jwks_uri', url: t.jwks_uri }
      : t.jwks
        ? { type: 'jwks', jwks: t.jwks as never }
        : t.spiffe_bundle
          ? { type: 'spiffe_bundle', file: at(t.spiffe_bundle) }
          : { type: 'discovery' },
    audience: t.audience,
    algorithms: t.algorithms,
    tokenTypes: t.token_types
      ? t.token_types.map((x) => (x === null ? null : (normalizeTyp(x) as string)))
      : defaultTokenTypes(t.kind),
    subjectPrefix: t.subject_prefix ?? null,
    claims: Object.fromEntries(
      Object.entries(t.claims).map(([k, v]) => [k, typeof v === 'string' ? [v] : v]),
    ),
    namespaces: t.namespaces ?? null,
    trustDomain: t.trust_domain ?? null,
    requireDpop: t.require_dpop,
    clockSkewSeconds: t.clock_skew,
    maxTokenLifetimeSeconds: t.max_token_lifetime,
    cacheMaxAgeSeconds: t.jwks_cache.max_age,
    cooldownSeconds: t.jwks_cache.cooldown,
    timeoutSeconds: t.jwks_cache.timeout,
  };
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
  const issuer = (options.issuer ?? c.issuer ?? `http://localhost:${options.port}`).replace(/\/+$/, '');
  const trustedIssuers = c.identity.trusted_issuers.map((t) => trustedIssuer(t, at));
  const seen = new Set<string>();
  for (const t of trustedIssuers) {
    // Our own tokens (leases, receipts) must never verify as workload tokens (B6).
    if (t.issuer.replace(/\/+$/, '') === issuer)
      throw new CountersignError(
        'CS_CONFIG_INVALID',
        `${file}: a trusted issuer cannot be this server (${issuer})`,
      );
    if (seen.has(t.issuer))
      throw new CountersignError('CS_CONFIG_INVALID', `${file}: trusted issuer ${t.issuer} is listed twice`);
    seen.add(t.issuer);
  }
  return {
    home: options.home,
    dev: options.dev ?? c.dev,
    issuer,
    sqliteFile: at(c.store.sqlite?.file ?? 'countersign.db'),
    postgres: resolvePostgres(c.store, options.env ?? process.env, file),
    eventsPollMs: c.events.poll_interval * 1000,
    policyDir: at(c.policies.dir),
    schemaFile: at(c.policies.schema),
    candidatePolicyDir: c.policies.candidate === null ? null : at(c.policies.candidate),
    policyAdminGroup: c.policies.admin_group,
    catalogFile: at(c.catalog),
    signingKeyFile: at(c.signing_key_file),
    defaultMaxTtlSeconds: c.checkpoint.default_max_ttl,
    defaultDeadlineSeconds: c.checkpoint.default_deadline,
    fallbackReviewGroup: c.checkpoint.fallback_review_group,
    maxPendingPerAgent: c.checkpoint.max_pending_per_agent,
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
    taskIdleTimeoutSeconds: c.tasks.idle_timeout,
    issuers: c.issuers,
    masterKeyFile: c.secrets.master_key_file === null ? null : at(c.secrets.master_key_file),
    webhooks: c.notifications.webhooks,
    trustedIssuers,
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
      issuer: z.string().optional(),
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
