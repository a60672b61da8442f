/**
 * The gateway's configuration (`gateway.yaml`): the Countersign server, the agents the gateway
 * acts as, the upstream MCP servers, per-tool resource mapping, and how clients reach it.
 * Validated with zod; every problem is a GatewayError with a stable code and the path of the
 * offending field.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GatewayError } from './errors.js';

/** Upstream and tool names become part of `mcp:<upstream>:<tool>` and of `<upstream>__<tool>`. */
const UPSTREAM_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const SEGMENT = /^[A-Za-z0-9._-]{1,128}$/;

const ToolRule = z.strictObject({
  /** A resource template: `{name}` is replaced by the argument `name` (e.g. `github://{repo}@{branch}`). */
  resource: z.string().min(1).max(512).optional(),
  /** Credential lifetime to ask for, in seconds. */
  ttl_seconds: z.number().int().min(1).max(86_400).optional(),
});

const UpstreamBase = {
  /** Per-tool rules, keyed by the upstream's own tool name. */
  tools: z.record(z.string().regex(SEGMENT, 'tool names are 1-128 of [A-Za-z0-9._-]'), ToolRule).default({}),
  /** How long one call to this upstream may take once allowed, in seconds. */
  call_timeout_seconds: z.number().int().min(1).max(3600).default(300),
  /** Leave tools that policy forbids outright out of `tools/list` (default: the gateway's setting). */
  hide_forbidden: z.boolean().optional(),
};

const StdioUpstream = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
  ...UpstreamBase,
});

const HttpUpstream = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), z.string()).default({}),
  ...UpstreamBase,
});

const Upstream = z.union([StdioUpstream, HttpUpstream], {
  error: 'an upstream needs either `command` (stdio) or `url` (Streamable HTTP), with only their own fields',
});

/** How the gateway proves it is an agent: exactly one token source, optionally DPoP. */
const Agent = z
  .strictObject({
    /** The registered agent id (required with `private_key_file`). */
    id: z.string().min(1).max(128).optional(),
    /** The agent's private Ed25519 JWK (as `countersign agent add` writes it). */
    private_key_file: z.string().min(1).optional(),
    /** A workload token re-read on every call (Kubernetes projected token, JWT-SVID file). */
    token_file: z.string().min(1).optional(),
    /** A workload token from an environment variable, read on every call. */
    token_env: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .optional(),
    /** Send DPoP proofs (a fresh ES256 key per gateway process): leases bind to it. */
    dpop: z.boolean().default(false),
  })
  .refine(
    (a) => [a.private_key_file, a.token_file, a.token_env].filter((v) => v !== undefined).length === 1,
    'give exactly one of private_key_file, token_file, token_env',
  )
  .refine((a) => a.private_key_file === undefined || a.id !== undefined, {
    message: 'id is required with private_key_file',
    path: ['id'],
  });

const Route = z.strictObject({
  path: z.string().regex(/^\/[A-Za-z0-9._~\-/]*$/, 'an absolute path of [A-Za-z0-9._~-/]'),
  agent: z.string(),
  /**
   * SHA-256 (hex) of a bearer token clients must send on this route. Without it, anyone who
   * reaches the route acts as its agent: bind to localhost, or set it.
   */
  bearer_sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

export const GatewayConfigSchema = z
  .strictObject({
    /** Countersign's base URL as the gateway reaches it. */
    server: z.url({ protocol: /^https?$/ }),
    /** Countersign's issuer URL, when it differs from `server` (read from its metadata otherwise). */
    audience: z.url().optional(),
    agents: z.record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), Agent),
    upstreams: z.record(
      z.string().regex(UPSTREAM_NAME, 'upstream names are lowercase letters, digits and -'),
      Upstream,
    ),
    stdio: z.strictObject({ agent: z.string() }).optional(),
    http: z
      .strictObject({
        host: z.string().default('localhost'),
        port: z.number().int().min(0).max(65_535).default(8788),
        routes: z.array(Route).min(1),
      })
      .optional(),
    /** `context.environment` of every request (what the agent says it runs in). */
    environment: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional(),
    /** An argument whose text, if a tool call has it, is added to the request's purpose. */
    purpose_argument: z.string().min(1).default('purpose'),
    /** How many earlier calls of the session go into `context.tool_chain` (0 to 31; the server accepts at most 32). */
    tool_chain_length: z.number().int().min(0).max(31).default(8),
    /** Longest a call waits for a review before answering "still pending" (default: the review deadline). */
    review_wait_seconds: z.number().int().min(1).max(86_400).optional(),
    /**
     * Leave tools that policy forbids outright (an explicit forbid) out of `tools/list`, asked
     * of the server per agent and cached 30 s. A convenience: every call is still checked.
     */
    hide_forbidden: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    const agents = new Set(Object.keys(c.agents));
    if (!c.stdio && !c.http) ctx.addIssue({ code: 'custom', message: 'give `stdio`, `http` or both' });
    if (c.stdio && !agents.has(c.stdio.agent))
      ctx.addIssue({ code: 'custom', path: ['stdio', 'agent'], message: `no agent named ${c.stdio.agent}` });
    const paths = new Set<string>();
    c.http?.routes.forEach((r, i) => {
      if (!agents.has(r.agent))
        ctx.addIssue({
          code: 'custom',
          path: ['http', 'routes', i, 'agent'],
          message: `no agent named ${r.agent}`,
        });
      if (paths.has(r.path))
        ctx.addIssue({ code: 'custom', path: ['http', 'routes', i, 'path'], message: 'path given twice' });
      paths.add(r.path);
    });
    for (const [name, upstream] of Object.entries(c.upstreams)) {
      for (const [tool, rule] of Object.entries(upstream.tools)) {
        if (rule.resource === undefined) continue;
        const problem = templateProblem(rule.resource);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['upstreams', name, 'tools', tool, 'resource'],
            message: problem,
          });
      }
    }
  });

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type AgentConfig = GatewayConfig['agents'][string];
export type UpstreamConfig = GatewayConfig['upstreams'][string];

function templateProblem(template: string): string | null {
  const stripped = template.replace(/\{[A-Za-z_][A-Za-z0-9_]{0,63}\}/g, 'x');
  if (/[{}]/.test(stripped)) return 'placeholders are {argument_name}; braces are not allowed otherwise';
  if (!/^[a-z][a-z0-9+.-]*:\/\//.test(template)) return 'a resource template starts with scheme://';
  return null;
}

/** Validates a parsed config object (relative file paths resolve against `baseDir`). */
export function parseGatewayConfig(value: unknown, baseDir = process.cwd()): GatewayConfig {
  const parsed = GatewayConfigSchema.safeParse(value);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`,
    );
    throw new GatewayError(
      'CS_GATEWAY_CONFIG_INVALID',
      `gateway config is invalid:\n  ${lines.join('\n  ')}`,
    );
  }
  const config = parsed.data;
  for (const agent of Object.values(config.agents)) {
    if (agent.private_key_file) agent.private_key_file = resolve(baseDir, agent.private_key_file);
    if (agent.token_file) agent.token_file = resolve(baseDir, agent.token_file);
  }
  for (const upstream of Object.values(config.upstreams)) {
    if ('command' in upstream && upstream.cwd) upstream.cwd = resolve(baseDir, upstream.cwd);
  }
  return config;
}

/** Reads and validates a gateway.yaml. */
export function loadGatewayConfig(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new GatewayError(
      'CS_GATEWAY_CONFIG_UNREADABLE',
      `cannot read ${path}: ${(error as Error).message}`,
    );
  }
  let value: unknown;
  try {
    value = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    throw new GatewayError(
      'CS_GATEWAY_CONFIG_INVALID',
      `${path} is not valid YAML: ${(error as Error).message}`,
    );
  }
  return parseGatewayConfig(value, dirname(resolve(path)));
}
