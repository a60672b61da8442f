/**
 * Bounds and gates on the HTTP face, over a real socket: sessions are capped (when full, idle
 * sessions are ended to make room, otherwise a new one is refused with 503); a route checks its
 * bearer token; on loopback a foreign Host or Origin is refused (DNS rebinding).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { type GatewayHttpOptions, listenHttp, McpGateway, parseGatewayConfig } from '../src/index.js';

async function start(options: GatewayHttpOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-http-'));
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  writeFileSync(join(dir, 'agent.jwk'), JSON.stringify(await exportJWK(privateKey)));
  const gateway = new McpGateway(
    parseGatewayConfig(
      {
        server: 'http://127.0.0.1:9',
        agents: { a: { id: 'agent-a', private_key_file: 'agent.jwk' } },
        upstreams: { docs: { command: 'never-started' } },
        http: {
          host: 'localhost',
          port: 0,
          routes: [
            { path: '/mcp', agent: 'a' },
            {
              path: '/locked',
              agent: 'a',
              bearer_sha256: createHash('sha256').update('s3cret').digest('hex'),
            },
          ],
        },
      },
      dir,
    ),
  );
  return listenHttp(gateway, options);
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
});

function post(url: string, headers: Record<string, string> = {}, body = INITIALIZE) {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body,
  });
}

describe('gateway HTTP sessions', () => {
  it('when full, an idle session is ended to make room; otherwise a new one is refused', async () => {
    const evicting = await start({ maxSessions: 1, sessionIdleMs: 0 });
    try {
      const first = await post(`${evicting.url}/mcp`);
      expect(first.status).toBe(200);
      const firstId = first.headers.get('mcp-session-id')!;
      expect(firstId).toBeTruthy();
      expect((await post(`${evicting.url}/mcp`)).status).toBe(200);
      const reuse = await post(
        `${evicting.url}/mcp`,
        { 'mcp-session-id': firstId },
        JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
      );
      expect(reuse.status).toBe(404);
    } finally {
      await evicting.close();
    }
    const strict = await start({ maxSessions: 1, sessionIdleMs: 60_000 });
    try {
      expect((await post(`${strict.url}/mcp`)).status).toBe(200);
      const refused = await post(`${strict.url}/mcp`);
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CS_UNAVAILABLE');
    } finally {
      await strict.close();
    }
  });

  it('a route with a bearer token refuses requests without it; DNS rebinding: a foreign Host or Origin is refused', async () => {
    const served = await start();
    try {
      expect((await post(`${served.url}/locked`)).status).toBe(401);
      expect((await post(`${served.url}/locked`, { authorization: 'Bearer wrong' })).status).toBe(401);
      expect((await post(`${served.url}/locked`, { authorization: 'Bearer s3cret' })).status).toBe(200);
      expect((await post(`${served.url}/nowhere`)).status).toBe(404);
      expect((await post(`${served.url}/mcp`, { origin: 'https://evil.example' })).status).toBe(403);
      const { port } = new URL(served.url);
      const rebound = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: 'localhost',
            port,
            path: '/mcp',
            method: 'POST',
            headers: {
              host: `evil.example:${port}`,
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(INITIALIZE);
      });
      expect(rebound).toBe(403);
    } finally {
      await served.close();
    }
  });
});
