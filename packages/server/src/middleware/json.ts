import { CountersignError } from '@countersign/core';
import { LIMITS } from '@countersign/protocol';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { parseJsonBody } from '../json-body.js';

/**
 * Hono's bodyLimit, except that a body framed by Content-Length is judged by the header alone:
 * Node's HTTP parser never hands over more bytes than it declares, so nothing needs counting.
 * Hono's middleware asks for `c.req.raw.body` first, which makes @hono/node-server build a
 * whole Web Request (stream, AbortController) for every POST: about a tenth of an auto-allow's
 * main-thread time in the benchmark profile. A chunked body (no Content-Length) is still
 * counted as it streams in, and refused the moment it passes the limit.
 */
export function limitBody(
  maxSize: number,
  onError: (c: Context) => Response | Promise<Response>,
): MiddlewareHandler {
  const streaming = bodyLimit({ maxSize, onError });
  return async (c, next) => {
    const length = c.req.header('content-length');
    // Only behind Node's HTTP server (c.env.incoming) does the header frame the body; a Request
    // built in-process (app.request, another runtime) may carry any Content-Length it likes.
    const framedByNode = (c.env as { incoming?: unknown } | undefined)?.incoming !== undefined;
    if (framedByNode && length !== undefined && c.req.header('transfer-encoding') === undefined) {
      // Node refuses a malformed Content-Length before we run; anything else is refused here.
      if (!/^[0-9]{1,15}$/.test(length) || Number(length) > maxSize) return onError(c);
      return next();
    }
    return streaming(c, next);
  };
}

/** Refuses bodies over the limit before reading them whole (THREATS.md E4). */
export const jsonBodyLimit = limitBody(LIMITS.bodyBytes, (c) =>
  c.json(
    { error: { code: 'CS_BODY_TOO_LARGE', message: `body larger than ${LIMITS.bodyBytes} bytes` } },
    413,
  ),
);

/** Parses a hostile JSON body and validates it with a schema; every failure is a coded 400. */
export async function readJson<S extends z.ZodType>(
  c: Context,
  schema: S,
): Promise<{ value: z.infer<S>; raw: unknown }> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new CountersignError('CS_BAD_JSON', 'Content-Type must be application/json');
  }
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  // Backstop: Hono's counting path trusts a Content-Length header too, and a Request built in
  // process may understate it. Over Node's server this never fires (the parser frames the body).
  if (bytes.byteLength > LIMITS.bodyBytes) {
    throw new CountersignError('CS_BODY_TOO_LARGE', `body larger than ${LIMITS.bodyBytes} bytes`);
  }
  const raw = parseJsonBody(bytes);
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
