/**
 * The gateway over Streamable HTTP. Each configured route acts as one agent. 2025-era clients
 * (every v1 client, and v2 clients by default) get a session per `initialize` (the
 * `Mcp-Session-Id` header), so the session's tool calls form the tool chain and a cancelled
 * call reaches the request it belongs to; 2026-era requests are served per request by the
 * SDK's `createMcpHandler`, with the route's own running session.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import {
  createMcpHandler,
  hostHeaderValidationResponse,
  isLegacyRequest,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  type McpHttpHandler,
  originValidationResponse,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import type { GatewayConfig } from './config.js';
import type { GatewaySession, McpGateway } from './gateway.js';

/** Sessions held at once; beyond this a new `initialize` is refused (503) rather than eating memory. */
export const MAX_SESSIONS = 1000;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

type Route = NonNullable<GatewayConfig['http']>['routes'][number];

interface LegacySession {
  readonly route: string;
  readonly session: GatewaySession;
  readonly transport: WebStandardStreamableHTTPServerTransport;
}

function jsonError(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

function bearerMatches(request: Request, expectedHex: string): boolean {
  const header = request.headers.get('authorization') ?? '';
  const match = /^Bearer ([^\s]+)$/i.exec(header);
  if (!match) return false;
  const actual = createHash('sha256').update(match[1]!).digest();
  return timingSafeEqual(actual, Buffer.from(expectedHex, 'hex'));
}

export interface GatewayHttpHandler {
  fetch(request: Request): Promise<Response>;
  close(): Promise<void>;
}

export function createGatewayHttpHandler(gateway: McpGateway): GatewayHttpHandler {
  const http = gateway.config.http;
  if (!http) throw new TypeError('the config has no http section');
  const loopback = LOOPBACK.has(http.host);
  const sessions = new Map<string, LegacySession>();
  const modern = new Map<string, { handler: McpHttpHandler; session: GatewaySession }>();
  for (const route of http.routes) {
    const session = gateway.newSession(route.agent);
    modern.set(route.path, {
      session,
      handler: createMcpHandler(() => gateway.serverFor(session), { legacy: 'reject' }),
    });
  }

  async function legacy(route: Route, request: Request): Promise<Response> {
    const sid = request.headers.get('mcp-session-id');
    if (sid) {
      const held = sessions.get(sid);
      if (!held || held.route !== route.path) return jsonError(404, 'CS_NOT_FOUND', 'no such MCP session');
      return held.transport.handleRequest(request);
    }
    if (request.method !== 'POST')
      return jsonError(400, 'CS_INVALID_REQUEST', 'an MCP session starts with initialize');
    if (sessions.size >= MAX_SESSIONS) return jsonError(503, 'CS_UNAVAILABLE', 'too many MCP sessions');
    const session = gateway.newSession(route.agent);
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => session.id,
      onsessioninitialized: (id) => {
        sessions.set(id, { route: route.path, session, transport });
      },
      onsessionclosed: async (id) => {
        sessions.delete(id);
        await gateway.endSession(session);
      },
    });
    transport.onclose = () => {
      sessions.delete(session.id);
    };
    await gateway.serverFor(session).connect(transport);
    return transport.handleRequest(request);
  }

  return {
    async fetch(request) {
      const url = new URL(request.url);
      const route = http.routes.find((r) => r.path === url.pathname);
      if (!route) return jsonError(404, 'CS_NOT_FOUND', 'no MCP endpoint here');
      // DNS rebinding: a page in a browser must not reach a gateway bound to this machine.
      if (loopback) {
        const rejected =
          hostHeaderValidationResponse(request, localhostAllowedHostnames()) ??
          originValidationResponse(request, localhostAllowedOrigins());
        if (rejected) return rejected;
      }
      if (route.bearer_sha256 && !bearerMatches(request, route.bearer_sha256))
        return jsonError(401, 'CS_UNAUTHENTICATED', 'this route needs its bearer token');
      if (request.method === 'POST' && !(await isLegacyRequest(request))) {
        return modern.get(route.path)!.handler.fetch(request);
      }
      return legacy(route, request);
    },
    async close() {
      const held = [...sessions.values()];
      sessions.clear();
      await Promise.all(
        held.map(async (s) => {
          await s.transport.close().catch(() => {});
          await gateway.endSession(s.session);
        }),
      );
      for (const m of modern.values()) {
        await m.handler.close().catch(() => {});
        await gateway.endSession(m.session);
      }
    },
  };
}

export interface RunningHttpGateway {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the HTTP routes on the configured host and port (port 0: any free port). */
export async function listenHttp(gateway: McpGateway): Promise<RunningHttpGateway> {
  const http = gateway.config.http;
  if (!http) throw new TypeError('the config has no http section');
  const handler = createGatewayHttpHandler(gateway);
  const server = serve({ fetch: handler.fetch, port: http.port, hostname: http.host });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = http.host.includes(':') ? `[${http.host}]` : http.host;
  return {
    url: `http://${host}:${port}`,
    async close() {
      await handler.close();
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
