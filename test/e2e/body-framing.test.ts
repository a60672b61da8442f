/**
 * The body limit on a real socket (THREATS.md E4, D4). A body framed by Content-Length is
 * judged by the header before a byte is read; a chunked body (no Content-Length) is counted
 * as it streams in. Both must refuse 64 KiB + 1 with 413 CS_BODY_TOO_LARGE, both must accept
 * a valid body, and a Content-Length that understates the body must never yield an allow.
 */
import { request as httpRequest } from 'node:http';
import { LIMITS } from '@countersign/protocol';
import { importJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerKeyAgent, type TestAgent } from '../support/harness.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

const VALID = JSON.stringify({
  action: 'read',
  resource: 'postgres://staging/app/orders',
  intent: { purpose: 'Reconcile orders', task_id: 'task-framing' },
});

/** Pads a JSON object with insignificant whitespace to exactly `bytes` bytes. */
const padTo = (text: string, bytes: number) => `${text.slice(0, -1)}${' '.repeat(bytes - text.length)}}`;

interface Answer {
  readonly status: number;
  readonly json: { status?: string; error?: { code: string } } | null;
}

describe('body framing on a real socket', () => {
  let live: LiveServer;
  let agent: TestAgent;

  beforeAll(async () => {
    live = await startLiveServer();
    agent = await registerKeyAgent(live.server.deps.ctx, 'framing-bot', { owner: 'app' });
  });
  afterAll(async () => live?.close());

  async function assertion(): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: agent.id,
      sub: agent.id,
      aud: live.url,
      jti: crypto.randomUUID(),
      iat,
      exp: iat + 60,
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
      .sign(await importJWK(agent.privateJwk, 'EdDSA'));
  }

  /**
   * POSTs `chunks` to /v1/access-requests. With `contentLength` the body is framed by that
   * header (which may lie); without it Node sends it chunked.
   */
  async function post(chunks: string[], contentLength?: number): Promise<Answer> {
    const token = await assertion();
    const url = new URL('/v1/access-requests', live.url);
    return new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        connection: 'close',
      };
      if (contentLength !== undefined) headers['content-length'] = String(contentLength);
      const req = httpRequest(url, { method: 'POST', headers, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => {
          let json: Answer['json'] = null;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON: the status alone tells
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      });
      // The server may answer (413) and close before the whole body is written.
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
      });
      for (const chunk of chunks) req.write(chunk);
      req.end();
    });
  }

  it('E4 a Content-Length-framed valid body is allowed', async () => {
    const answer = await post([VALID], Buffer.byteLength(VALID));
    expect(answer.status).toBe(201);
    expect(answer.json?.status).toBe('allowed');
  });

  it('E4 a chunked valid body (no Content-Length) is allowed', async () => {
    const half = Math.floor(VALID.length / 2);
    const answer = await post([VALID.slice(0, half), VALID.slice(half)]);
    expect(answer.status).toBe(201);
    expect(answer.json?.status).toBe('allowed');
  });

  it('E4 a body of exactly 64 KiB framed by Content-Length is allowed', async () => {
    const body = padTo(VALID, LIMITS.bodyBytes);
    const answer = await post([body], LIMITS.bodyBytes);
    expect(answer.status).toBe(201);
  });

  it('E4 a Content-Length of 64 KiB + 1 is refused with 413 CS_BODY_TOO_LARGE', async () => {
    const body = padTo(VALID, LIMITS.bodyBytes + 1);
    const answer = await post([body], LIMITS.bodyBytes + 1);
    expect(answer.status).toBe(413);
    expect(answer.json?.error?.code).toBe('CS_BODY_TOO_LARGE');
  });

  it('E4 D4 a chunked body of 64 KiB + 1 is refused with 413 CS_BODY_TOO_LARGE', async () => {
    const body = padTo(VALID, LIMITS.bodyBytes + 1);
    const chunks = Array.from({ length: Math.ceil(body.length / 4096) }, (_, i) =>
      body.slice(i * 4096, (i + 1) * 4096),
    );
    const answer = await post(chunks);
    expect(answer.status).toBe(413);
    expect(answer.json?.error?.code).toBe('CS_BODY_TOO_LARGE');
  });

  it('E4 a Content-Length that understates the body is never an allow', async () => {
    // The declared bytes are cut-off JSON (CS_BAD_JSON); the rest is garbage where Node expects
    // the next request, and Node's parser may answer its own 400 first. Either way: 400, no decision.
    const answer = await post([VALID], Buffer.byteLength(VALID) - 10);
    expect(answer.status).toBe(400);
    expect(answer.json?.status).toBeUndefined();
    if (answer.json?.error) expect(answer.json.error.code).toBe('CS_BAD_JSON');
  });
});
