/**
 * The MCP gateway's `hide_forbidden`: `tools/list` leaves out the tools that policy forbids
 * outright for the session's agent, as the server answers (the gateway is no policy engine).
 * A convenience only: a hidden tool called anyway still goes through the checkpoint and is
 * denied. The answer is cached per agent, and a server that cannot answer lists every tool.
 * The official v2 MCP client against the gateway in front of the test upstream (Streamable
 * HTTP) and a real Countersign.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ERROR_META,
  type GatewayConfig,
  listenHttp,
  McpGateway,
  parseGatewayConfig,
  type RunningHttpGateway,
} from '@countersign/mcp-gateway';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LiveServer, startLiveServer } from '../e2e/support/live-server.js';
import { registerKeyAgent } from '../support/harness.js';

const ROOT = resolve(import.meta.dirname, '../..');
const UPSTREAM = join(ROOT, 'test/mcp/support/upstream-server.ts');
const AGENT = 'coding-agent';

interface ToolResult {
  isError?: boolean;
  content: Array<{ type: string; text?: string }>;
  _meta?: Record<string, unknown>;
}

describe('MCP gateway hide_forbidden', () => {
  let live: LiveServer;
  let keyFile: string;
  let upstream: ChildProcess;
  let upstreamUrl: string;
  const opened: Array<{ gateway: McpGateway; running: RunningHttpGateway; client: Client }> = [];

  const configFor = (server: string, hide: { gateway?: boolean; upstream?: boolean }): GatewayConfig =>
    parseGatewayConfig({
      server,
      agents: { coder: { id: AGENT, private_key_file: keyFile } },
      upstreams: {
        // The same test server twice: as `docs` its tools are reads of the catalogued mcp://docs/*.
        docs: { url: upstreamUrl },
        github: {
          url: upstreamUrl,
          ...(hide.upstream === undefined ? {} : { hide_forbidden: hide.upstream }),
          tools: {
            // A gateway that fronts one repository: a resource without arguments is asked as is.
            delete_repo: { resource: 'github://acme/payments' },
            // From the arguments: not known before a call, so never hidden (an uncatalogued
            // mcp://github/create_pr would be forbidden by forbid-uncatalogued-change).
            create_pr: { resource: 'github://{repo}@{branch}' },
          },
        },
      },
      http: { host: 'localhost', port: 0, routes: [{ path: '/mcp', agent: 'coder' }] },
      environment: 'production',
      ...(hide.gateway === undefined ? {} : { hide_forbidden: hide.gateway }),
    });

  async function open(config: GatewayConfig, log?: (line: Record<string, unknown>) => void) {
    const gateway = new McpGateway(config, log ? { log } : {});
    const running = await listenHttp(gateway);
    const client = new Client({ name: 'test-client', version: '2.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${running.url}/mcp`)));
    opened.push({ gateway, running, client });
    return client;
  }

  async function visibilityEvents(): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    for await (const e of live.server.deps.ctx.store.auditEvents())
      if (e.type === 'policy.visibility_checked') out.push(e.data as Record<string, unknown>);
    return out;
  }

  const names = async (client: Client) => (await client.listTools()).tools.map((t) => t.name).sort();

  beforeAll(async () => {
    live = await startLiveServer();
    keyFile = join(live.home, 'coding-agent.jwk');
    const { privateJwk } = await registerKeyAgent(live.server.deps.ctx, AGENT);
    writeFileSync(keyFile, JSON.stringify(privateJwk), { mode: 0o600 });
    upstream = spawn(process.execPath, ['--import', 'tsx', UPSTREAM, '--http', '0'], {
      cwd: ROOT,
      env: { ...process.env, UPSTREAM_LOG: join(live.home, 'upstream.log') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    upstreamUrl = await new Promise<string>((ok, fail) => {
      upstream.stdout!.on('data', (chunk: Buffer) => {
        const m = /listening (\S+)/.exec(chunk.toString());
        if (m) ok(m[1]!);
      });
      upstream.once('exit', () => fail(new Error('the HTTP upstream exited')));
    });
  }, 60_000);

  afterAll(async () => {
    for (const o of opened) {
      await o.client.close().catch(() => {});
      await o.running.close();
      await o.gateway.close();
    }
    upstream?.kill();
    await live?.close();
  });

  it('off by default: every tool is listed and the server is not asked', async () => {
    const client = await open(configFor(live.url, {}));
    expect(await names(client)).toContain('github__delete_repo');
    expect(await visibilityEvents()).toHaveLength(0);
  });

  it('on: the tools an explicit forbid denies are left out; allowed, reviewed, default-deny and argument-mapped tools are listed; one audited check per TTL', async () => {
    const client = await open(configFor(live.url, { gateway: true }));
    const listed = await names(client);
    // forbid-repository-deletion (github://acme/payments), and forbid-uncatalogued-change for
    // writes (mcp:github:*) on the uncatalogued mcp://github/search and mcp://github/crash.
    for (const hidden of ['github__delete_repo', 'github__search', 'github__crash'])
      expect(listed).not.toContain(hidden);
    expect(listed).toEqual(
      [
        // read-internal: allowed
        'docs__create_pr',
        'docs__crash',
        'docs__delete_repo',
        'docs__get_file',
        'docs__search',
        // resource from the arguments: never hidden (its calls are reviewed)
        'github__create_pr',
        // a read of an uncatalogued resource: default deny, not forbidden outright
        'github__get_file',
      ].sort(),
    );
    // A second listing within the cache TTL asks the server nothing.
    expect(await names(client)).toEqual(listed);
    const events = await visibilityEvents();
    expect(events).toHaveLength(1);
    // Asked: the five docs tools and the four github tools whose resource is fixed.
    expect(events[0]).toMatchObject({ agent_id: AGENT, checks: 9, forbidden: 3, invalid: 0 });
  });

  it('a hidden tool called anyway still passes the checkpoint and is denied with its code', async () => {
    const client = opened.at(-1)!.client;
    const result = (await client.callTool({ name: 'github__delete_repo', arguments: {} })) as ToolResult;
    expect(result.isError).toBe(true);
    const error = result._meta?.[ERROR_META] as { code: string; request_id: string };
    expect(error.code).toBe('CS_DENIED');
    const request = await live.server.deps.ctx.store.read((tx) => tx.getRequest(error.request_id));
    expect(request).toMatchObject({ status: 'denied', action: 'mcp:github:delete_repo' });
    expect(request!.decision.determiningPolicies.map((p) => p.id)).toContain('forbid-repository-deletion');
  });

  it("per upstream: hide_forbidden false on one upstream wins over the gateway's true", async () => {
    const client = await open(configFor(live.url, { gateway: true, upstream: false }));
    const before = (await visibilityEvents()).length;
    const listed = await names(client);
    expect(listed).toEqual(expect.arrayContaining(['github__delete_repo', 'github__search', 'docs__search']));
    // Only the docs tools (the gateway's setting) were asked about.
    const events = await visibilityEvents();
    expect(events).toHaveLength(before + 1);
    expect(events.at(-1)).toMatchObject({ checks: 5, forbidden: 0 });
  });

  it('a server that cannot answer: every tool is listed (fail open for listing) with a warning, and calls fail closed', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const client = await open(configFor('http://127.0.0.1:9', { gateway: true }), (l) => logs.push(l));
    expect(await names(client)).toContain('github__delete_repo');
    expect(logs.some((l) => l.level === 'warn' && /forbidden/.test(String(l.msg)))).toBe(true);
    const result = (await client.callTool({ name: 'github__delete_repo', arguments: {} })) as ToolResult;
    expect(result.isError).toBe(true);
    expect(result._meta?.[ERROR_META]).toMatchObject({ code: 'CS_SERVER_UNREACHABLE' });
  });
});
