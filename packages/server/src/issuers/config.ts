/**
 * The `issuers:` section of countersign.yaml: named credential issuers that catalog entries
 * pick with `issuer:`. Secrets never appear here: passwords and API keys come from files
 * (mode 0600) or sealed secrets. docs/configuration.md lists every field.
 */
import { isAbsolute, join } from 'node:path';
import { CountersignError, ISSUER_NAME, parseDuration } from '@countersign/core';
import { z } from 'zod';
import {
  DEFAULT_PRIVILEGES,
  type PostgresRoleOptions,
  ROLE_PREFIX,
  TABLE_PRIVILEGES,
} from './postgres-role.js';

const duration = z.string().transform((s, ctx) => {
  try {
    return parseDuration(s);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const HOST = /^[a-z0-9][a-z0-9.-]{0,62}$/;

export const PostgresRoleConfigSchema = z.strictObject({
  kind: z.literal('postgres_role'),
  /** The `<server>` segment of postgres://<server>/<db>/<schema>.<table> this issuer serves. */
  server: z.string().regex(HOST),
  /** postgres://user@host:port/database[?sslmode=disable|verify-full], without a password. */
  admin_url: z.string(),
  admin_password_file: z.string().optional(),
  connect_host: z.string().min(1).max(253).optional(),
  connect_port: z.number().int().min(1).max(65535).optional(),
  role_prefix: z.string().regex(ROLE_PREFIX).default('cs_'),
  connection_limit: z.number().int().min(1).max(100).default(5),
  privileges: z.record(z.string().min(1).max(128), z.array(z.enum(TABLE_PRIVILEGES)).min(1)).optional(),
  timeout: duration.default(10),
});

export const SealedSecretConfigSchema = z.strictObject({
  kind: z.literal('sealed_secret'),
  /** Actions that release a secret (exact names); default read. */
  actions: z.array(z.string().min(1).max(128)).min(1).default(['read']),
});

/** Upstream names: the `<upstream>` in https://<upstream>/<path> resources and /proxy/<upstream>/. */
export const UPSTREAM_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export const DEFAULT_PROXY_METHODS: Readonly<Record<string, readonly (typeof HTTP_METHODS)[number][]>> = {
  read: ['GET', 'HEAD'],
  write: ['POST', 'PUT', 'PATCH'],
  delete: ['DELETE'],
};
/** Headers the proxy owns: an injection may not name them. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-connection',
  'cookie',
]);

const secretSource = {
  secret_file: z.string().min(1).optional(),
  sealed_secret: z.string().min(1).optional(),
};

const InjectSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('bearer'), ...secretSource }),
    z.strictObject({
      type: z.literal('basic'),
      username: z
        .string()
        .max(256)
        .regex(/^[\x20-\x39\x3b-\x7e]*$/, 'printable ASCII without a colon'),
      ...secretSource,
    }),
    z.strictObject({
      type: z.literal('header'),
      header: z
        .string()
        .regex(/^[A-Za-z0-9-]{1,64}$/)
        .refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), 'the proxy owns that header'),
      prefix: z
        .string()
        .regex(/^[\x20-\x7e]*$/)
        .max(64)
        .default(''),
      ...secretSource,
    }),
  ])
  .refine(
    (i) => (i.secret_file === undefined) !== (i.sealed_secret === undefined),
    'give exactly one of secret_file or sealed_secret (never the secret itself)',
  );

export const UpstreamConfigSchema = z.strictObject({
  url: z.url(),
  inject: InjectSchema,
  /** Action name -> HTTP methods the lease allows; default read: GET HEAD, write: POST PUT PATCH, delete: DELETE. */
  methods: z.record(z.string().min(1).max(128), z.array(z.enum(HTTP_METHODS)).min(1)).optional(),
  /** Lets the upstream be on loopback, private or link-local addresses (and plain http). Off by default (K3). */
  allow_private_networks: z.boolean().default(false),
  timeout: duration.default(30),
  max_request_bytes: z
    .number()
    .int()
    .min(0)
    .max(1024 ** 3)
    .default(64 * 1024 * 1024),
});

export const ProxyConfigSchema = z.strictObject({
  kind: z.literal('proxy'),
  upstreams: z.record(z.string().regex(UPSTREAM_NAME), UpstreamConfigSchema),
});

export const IssuerConfigSchema = z.discriminatedUnion('kind', [
  PostgresRoleConfigSchema,
  SealedSecretConfigSchema,
  ProxyConfigSchema,
]);
export type IssuerConfig = z.infer<typeof IssuerConfigSchema>;

export const IssuersConfigSchema = z
  .record(z.string().regex(ISSUER_NAME), IssuerConfigSchema)
  .default({})
  .refine((issuers) => !('access_token' in issuers), 'access_token is built in and cannot be redefined');

function invalid(name: string, message: string): never {
  throw new CountersignError('CS_CONFIG_INVALID', `issuers.${name}: ${message}`);
}

/** Resolves a postgres_role issuer's configuration into the issuer's options (reads the password file). */
export function postgresRoleOptions(
  name: string,
  c: z.infer<typeof PostgresRoleConfigSchema>,
  home: string,
  readSecret: (path: string, what: string) => string,
): PostgresRoleOptions {
  let url: URL;
  try {
    url = new URL(c.admin_url);
  } catch {
    invalid(name, 'admin_url is not a URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    invalid(name, 'admin_url must be postgres://');
  if (url.password !== '') invalid(name, 'admin_url must not hold a password: use admin_password_file');
  const sslmode = url.searchParams.get('sslmode') ?? 'disable';
  if (sslmode !== 'disable' && sslmode !== 'verify-full') {
    invalid(name, 'admin_url sslmode must be disable or verify-full (anything else is not verified TLS)');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : 5432;
  const at = (p: string) => (isAbsolute(p) ? p : join(home, p));
  return {
    name,
    server: c.server,
    admin: {
      host,
      port,
      user: decodeURIComponent(url.username) || 'postgres',
      password: c.admin_password_file
        ? readSecret(at(c.admin_password_file), `issuers.${name}.admin_password_file`)
        : null,
      ssl: sslmode === 'verify-full' ? { rejectUnauthorized: true, servername: host } : false,
    },
    connectHost: c.connect_host ?? host,
    connectPort: c.connect_port ?? port,
    rolePrefix: c.role_prefix,
    connectionLimit: c.connection_limit,
    privileges: c.privileges ?? DEFAULT_PRIVILEGES,
    timeoutMs: c.timeout * 1000,
  };
}
