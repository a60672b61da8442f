/**
 * Wire schemas, shared by the server, the SDK, the CLI and the console. Strict objects:
 * unknown fields are refused (THREATS.md E7). Bounds are part of the contract (D4).
 */
import { z } from 'zod';

export const LIMITS = {
  bodyBytes: 64 * 1024,
  jsonDepth: 64,
  purpose: 4096,
  summary: 1024,
  modelOutput: 8192,
  toolChain: 32,
  identifier: 128,
  resource: 512,
  maxTtlSeconds: 86_400,
  maxWaitSeconds: 60,
  /** The canonical JSON of one MCP tool call's arguments, as the reviewer reads it. */
  toolArguments: 16 * 1024,
} as const;

// C0 controls other than tab, newline and carriage return, and DEL: never in agent text.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
// A lone UTF-16 surrogate cannot be encoded as UTF-8 or canonicalized (E6).
const LONE_SURROGATE = /(?:[\uD800-\uDBFF](?![\uDC00-\uDFFF]))|(?:(?<![\uD800-\uDBFF])[\uDC00-\uDFFF])/;

/** Free text: bounded, no control characters, well-formed Unicode. Bidi and invisible characters are kept and flagged. */
export const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !CONTROL.test(s), 'must not contain control characters')
    .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode');

/** Identifiers: ASCII, no spaces or controls (D3: no look-alikes). */
export const identifier = z
  .string()
  .min(1)
  .max(LIMITS.identifier)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/#+=-]*$/, 'must be ASCII letters, digits and . _ : @ / # + = -');

export const ToolCallSchema = z.strictObject({
  tool: identifier,
  source: z.enum(['trusted', 'untrusted', 'unknown']).optional(),
  summary: text(LIMITS.summary).optional(),
});

/**
 * The MCP tool call a request stands for (set by the MCP gateway): which upstream server and
 * tool, the arguments as RFC 8785 canonical JSON, and the digest of all three. All of it is inside the
 * request digest, so an approval binds to these exact arguments (THREATS.md A3); the server
 * checks that the digest is the arguments' own.
 */
export const McpToolCallSchema = z.strictObject({
  server: identifier,
  tool: identifier,
  arguments: text(LIMITS.toolArguments),
  call_digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>'),
  session: identifier.optional(),
  client: text(LIMITS.identifier).optional(),
});
export type McpToolCall = z.infer<typeof McpToolCallSchema>;

export const AccessRequestBodySchema = z.strictObject({
  action: z.string().min(1).max(LIMITS.identifier),
  resource: z.string().min(1).max(LIMITS.resource),
  intent: z.strictObject({
    purpose: text(LIMITS.purpose).min(1),
    task_id: identifier,
    ticket: identifier.optional(),
  }),
  context: z
    .strictObject({
      environment: identifier.optional(),
      on_behalf_of: identifier.optional(),
      tool_chain: z.array(ToolCallSchema).max(LIMITS.toolChain).optional(),
      model_output: text(LIMITS.modelOutput).optional(),
      tool_call: McpToolCallSchema.optional(),
    })
    .default({}),
  ttl_seconds: z.number().int().min(1).max(LIMITS.maxTtlSeconds).optional(),
});

export type AccessRequestBody = z.infer<typeof AccessRequestBodySchema>;

/**
 * `POST /v1/access-requests/forbidden`: which of these would policy forbid outright? The names
 * are checked per entry by the server's grammar (a bad one is reported as invalid, not a 400);
 * the count by core's use case (over 256: CS_TOO_MANY_CHECKS).
 */
export const ForbiddenChecksBodySchema = z.strictObject({
  checks: z.array(
    z.strictObject({
      action: z.string().min(1).max(LIMITS.identifier),
      resource: z.string().min(1).max(LIMITS.resource),
    }),
  ),
});
export type ForbiddenChecksBody = z.infer<typeof ForbiddenChecksBodySchema>;

/** `?wait=` as decimal digits only: `0x10`, `1e1` and an empty value are refused, not coerced. */
export const WaitQuerySchema = z
  .string()
  .regex(/^[0-9]{1,2}$/)
  .transform(Number)
  .pipe(z.number().int().min(0).max(LIMITS.maxWaitSeconds));
