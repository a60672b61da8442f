import { CountersignError } from '@countersign/core';
import { LIMITS } from '@countersign/protocol';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { parseJsonBody } from '../json-body.js';

/** Refuses bodies over the limit before reading them whole (THREATS.md E4). */
export const jsonBodyLimit = bodyLimit({
  maxSize: LIMITS.bodyBytes,
  onError: (c) =>
    c.json(
      { error: { code: 'CS_BODY_TOO_LARGE', message: `body larger than ${LIMITS.bodyBytes} bytes` } },
      413,
    ),
});

/** Parses a hostile JSON body and validates it with a schema; every failure is a coded 400. */
export async function readJson<S extends z.ZodType>(
  c: Context,
  schema: S,
): Promise<{ value: z.infer<S>; raw: unknown }> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new CountersignError('CS_BAD_JSON', 'Content-Type must be application/json');
  }
  const raw = parseJsonBody(new Uint8Array(await c.req.arrayBuffer()));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 10)
      .map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      `invalid request: ${issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; ')}`,
      {
        details: { issues },
      },
    );
  }
  return { value: parsed.data, raw };
}
