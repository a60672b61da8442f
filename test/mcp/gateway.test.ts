/**
 * The MCP gateway end to end: the official MCP clients (v2, and v1 for interop) against
 * `countersign mcp-gateway` in front of a real MCP server written for these tests, over
 * stdio (the CLI, launched by the client) and Streamable HTTP, in front of a real
 * Countersign; reviews approved with a passkey in Chromium (virtual authenticator).
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toolCallDigest } from '@countersign/core';
import {
  ERROR_META,
  type GatewayConfig,
  listenHttp,
  McpGateway,
  parseGatewayConfig,
  REQUEST_ID_META,
  type RunningHttpGateway,
} from '@countersign/mcp-gateway';
import { CountersignApiError, CountersignClient } from '@countersign/sdk';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newReviewerSession, type ReviewerSession } from '../e2e/support/browser.js';
import { type LiveServer, startLiveServer } from '../e2e/support/live-server.js';
import { registerKeyAgent } from '../support/harness.js';
import {
  appendConfig,
  kubernetesClaims,
  mint,
  newSigningKey,
  registerWorkloadAgent,
  type SigningKeyPair,
} from '../support/workload-issuers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const UPSTREAM = join(ROOT, 'test/mcp/support/upstream-server.ts');
const CLI = join(ROOT, 'packages/cli/bin/countersign.cjs');
const AGENT = 'coding-agent';
const K8S = 'https://kubernetes.default.svc.cluster.local';

interface ToolResult {
  isError?: boolean;
  content: Array<{ type: string; text?: string }>;
  _meta?: Record<string, unknown>;
}
const text = (r: ToolResult) => r.content.map((c) => c.text ?? '').join('\n');
const errorOf = (r: ToolResult) =>
  r._meta?.[ERROR_META] as { code: string; message: string; request_id: string | null };

describe('MCP gateway', () => {
  let live: LiveServer;
  let browser: Browser;
  let alice: ReviewerSession;
  let keyFile: string;
  let upstreamLog: string;
  let httpUpstream: ChildProcess;
  let httpUpstreamUrl: string;
  let gateway: McpGateway;
  let running: RunningHttpGateway;
  let client: Client;
  let agentSdk: CountersignClient;
  let k8sKey: SigningKeyPair;

  const forwarded = (tool: string) =>
    readFileSync(upstreamLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { tool: string; args: Record<string, unknown> })
      .filter((l) => l.tool === tool);

  const configFor = (overrides: Record<string, unknown> = {}): GatewayConfig =>
    parseGatewayConfig({
      server: live.url,
      agents: { coder: { id: AGENT, private_key_file: keyFile } },
      upstreams: {
        docs: {
          command: process.execPath,
          args: ['--import', 'tsx', UPSTREAM],
          cwd: ROOT,
          env: { UPSTREAM_LOG: upstreamLog },
        },
        github: {
          url: httpUpstreamUrl,
          tools: {
            create_pr: { resource: 'github://{repo}@{branch}' },
            delete_repo: { resource: 'github://{repo}' },
            get_file: { resource: 'github://{repo}/{path}' },
          },
        },
      },
      http: { host: 'localhost', port: 0, routes: [{ path: '/mcp', agent: 'coder' }] },
      environment: 'production',
      ...overrides,
    });

  async function connect(url: string): Promise<Client> {
    const c = new Client({ name: 'test-client', version: '2.0.0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
    return c;
  }

  async function pendingId(): Promise<string> {
    for (let i = 0; i < 200; i++) {
      const pending = await live.server.deps.ctx.store.read((tx) =>
        tx.listPendingRequests({ agentId: AGENT }, 10),
      );
      if (pending[0]) return pending[0].id;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no pending request appeared');
  }

  const requestOf = async (result: ToolResult) => {
    const id = result._meta?.[REQUEST_ID_META] as string;
    expect(id).toMatch(/^req_/);
    return (await live.server.deps.ctx.store.read((tx) => tx.getRequest(id)))!;
  };

  const statusOf = async (id: string) =>
    (await live.server.deps.ctx.store.read((tx) => tx.getRequest(id)))?.status;

  beforeAll(async () => {
    k8sKey = await newSigningKey('RS256', 'sa-key-1');
    live = await startLiveServer({
      configure: (home) =>
        appendConfig(
          home,
          `identity:
  trusted_issuers:
    - issuer: ${K8S}
      kind: kubernetes
      jwks: { keys: [${JSON.stringify(k8sKey.publicJwk)}] }
      audience: countersign
      algorithms: [RS256]
      namespaces: [ci]`,
        ),
    });
    keyFile = join(live.home, 'coding-agent.jwk');
    upstreamLog = join(live.home, 'upstream.log');
    writeFileSync(upstreamLog, '');
    const { privateJwk } = await registerKeyAgent(live.server.deps.ctx, AGENT);
    writeFileSync(keyFile, JSON.stringify(privateJwk), { mode: 0o600 });
    agentSdk = new CountersignClient({ server: live.url, agentId: AGENT, privateJwk });
    httpUpstream = spawn(process.execPath, ['--import', 'tsx', UPSTREAM, '--http', '0'], {
      cwd: ROOT,
      env: { ...process.env, UPSTREAM_LOG: upstreamLog },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    httpUpstreamUrl = await new Promise<string>((ok, fail) => {
      httpUpstream.stdout!.on('data', (chunk: Buffer) => {
        const m = /listening (\S+)/.exec(chunk.toString());
        if (m) ok(m[1]!);
      });
      httpUpstream.once('exit', () => fail(new Error('the HTTP upstream exited')));
    });
    gateway = new McpGateway(configFor());
    running = await listenHttp(gateway);
    client = await connect(running.url);
    browser = await launchChromium();
    alice = await newReviewerSession(browser, live.url);
    expect((await alice.enroll(await live.invite('alice@acme.dev', ['platform-oncall']))).status).toBe(200);
  }, 90_000);

  afterAll(async () => {
    await client?.close().catch(() => {});
    await running?.close();
    await gateway?.close();
    httpUpstream?.kill();
    await browser?.close();
    await live?.close();
  });

  it('tools/list passes the upstream tools through, namespaced per upstream', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual(
      expect.arrayContaining(['docs__search', 'docs__crash', 'github__create_pr', 'github__delete_repo']),
    );
    const createPr = tools.find((t) => t.name === 'github__create_pr')!;
    expect(createPr.inputSchema.properties).toHaveProperty('repo');
  });

  it('an allowed call is forwarded with its exact arguments and its result returned', async () => {
    const result = (await client.callTool({
      name: 'docs__search',
      arguments: { query: 'on-call handbook' },
    })) as ToolResult;
    expect(result.isError).toBeFalsy();
    expect(text(result)).toBe('3 results for on-call handbook');
    expect(forwarded('search').at(-1)!.args).toEqual({ query: 'on-call handbook' });
    const req = await requestOf(result);
    expect(req).toMatchObject({ status: 'allowed', resource: 'mcp://docs/search' });
    const claims = JSON.parse(req!.canonical);
    expect(claims.context.tool_call).toMatchObject({
      server: 'docs',
      tool: 'search',
      arguments: '{"query":"on-call handbook"}',
      call_digest: toolCallDigest('docs', 'search', { query: 'on-call handbook' }).digest,
      client: 'test-client/2.0.0',
    });
  });

  it('a denied call is a tool error naming the reason and the code, and never reaches the upstream', async () => {
    const before = forwarded('delete_repo').length;
    const result = (await client.callTool({
      name: 'github__delete_repo',
      arguments: { repo: 'acme/payments' },
    })) as ToolResult;
    expect(result.isError).toBe(true);
    expect(errorOf(result).code).toBe('CS_DENIED');
    expect(text(result)).toMatch(/^CS_DENIED: .*Agents may not delete source repositories/);
    expect(errorOf(result).request_id).toMatch(/^req_/);
    expect(forwarded('delete_repo')).toHaveLength(before);
  });

  it('F2 an argument that would reshape the mapped resource is refused before any request', async () => {
    for (const repo of ['acme/../secrets', 'acme/payments@evil', 'acme//x', 'acme/%2e%2e']) {
      const result = (await client.callTool({
        name: 'github__get_file',
        arguments: { repo, path: 'README.md' },
      })) as ToolResult;
      expect(result.isError).toBe(true);
      expect(errorOf(result).code).toBe('CS_RESOURCE_UNMAPPED');
    }
    expect(forwarded('get_file')).toHaveLength(0);
  });

  it('A5 D1 a reviewed call waits with progress; the console shows tool, arguments (inert, equal to the canonical JSON) and call digest; a passkey approval completes the call', async () => {
    const args = {
      repo: 'acme/payments',
      branch: 'main',
      title: 'Fix rounding <script>window.__pwned=1</script>',
      purpose: 'BILL-1234 hotfix',
    };
    const progress: string[] = [];
    const call = client.callTool(
      { name: 'github__create_pr', arguments: args },
      { onprogress: (p) => progress.push(p.message ?? ''), resetTimeoutOnProgress: true, timeout: 60_000 },
    );
    const id = await pendingId();
    const pack = await alice.api('GET', `/v1/console/requests/${id}`);
    expect(pack.status).toBe(200);
    expect(pack.body.resource.uri).toBe('github://acme/payments@main');
    expect(pack.body.action).toBe('mcp:github:create_pr');
    expect(pack.body.claims.tool_call).toMatchObject({
      server: 'github',
      tool: 'create_pr',
      arguments: toolCallDigest('github', 'create_pr', args).canonical,
      call_digest: toolCallDigest('github', 'create_pr', args).digest,
    });
    expect(pack.body.claims.purpose).toContain('Stated purpose: BILL-1234 hotfix');

    // The console renders the call: arguments as text (D1), the digest they bind to.
    await alice.page.goto(`${live.url}/console/#/requests/${id}`);
    const shown = alice.page.locator('[data-field="tool_arguments"]');
    await shown.waitFor();
    const argsText = await shown.innerText();
    expect(argsText).toContain('"title": "Fix rounding <script>window.__pwned=1</script>"');
    expect(argsText).toContain('"repo": "acme/payments"');
    // A5: what is displayed is exactly the arguments the digest covers.
    expect(JSON.parse(await shown.locator('.ut-text').innerText())).toEqual(args);
    expect(await alice.page.locator('[data-field="tool_call_digest"]').innerText()).toBe(
      toolCallDigest('github', 'create_pr', args).digest,
    );
    expect(await alice.page.locator('[data-field="tool_call"] script').count()).toBe(0);
    expect(await alice.page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();

    expect((await alice.decide(id, 'approve')).status).toBe(200);
    const result = (await call) as ToolResult;
    expect(result.isError).toBeFalsy();
    expect(text(result)).toContain('created pull request');
    expect(forwarded('create_pr').at(-1)!.args).toEqual(args);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]).toContain(id);
  });

  it('A3 an approval redeems only the very call reviewed: other arguments are refused; A1 and only once', async () => {
    const impatient = new McpGateway(configFor({ review_wait_seconds: 1 }));
    const served = await listenHttp(impatient);
    const c = await connect(served.url);
    try {
      const args = { repo: 'acme/payments', branch: 'release', title: 'Bump version' };
      const first = (await c.callTool({ name: 'github__create_pr', arguments: args })) as ToolResult;
      expect(errorOf(first).code).toBe('CS_REVIEW_PENDING');
      const id = errorOf(first).request_id!;
      expect(await statusOf(id)).toBe('pending');
      expect((await alice.decide(id, 'approve')).status).toBe(200);
      const before = forwarded('create_pr').length;

      const modified = { ...args, title: 'Bump version and disable CI' };
      const swapped = (await c.callTool({
        name: 'github__create_pr',
        arguments: modified,
        _meta: { [REQUEST_ID_META]: id },
      })) as ToolResult;
      expect(swapped.isError).toBe(true);
      expect(errorOf(swapped).code).toBe('CS_ARGUMENTS_MISMATCH');
      const otherBranch = (await c.callTool({
        name: 'github__create_pr',
        arguments: { ...args, branch: 'main' },
        _meta: { [REQUEST_ID_META]: id },
      })) as ToolResult;
      expect(errorOf(otherBranch).code).toBe('CS_ARGUMENTS_MISMATCH');
      expect(forwarded('create_pr')).toHaveLength(before);

      const redeemed = (await c.callTool({
        name: 'github__create_pr',
        arguments: args,
        _meta: { [REQUEST_ID_META]: id },
      })) as ToolResult;
      expect(redeemed.isError).toBeFalsy();
      expect(forwarded('create_pr').at(-1)!.args).toEqual(args);

      const again = (await c.callTool({
        name: 'github__create_pr',
        arguments: args,
        _meta: { [REQUEST_ID_META]: id },
      })) as ToolResult;
      expect(errorOf(again).code).toBe('CS_APPROVAL_USED');
      expect(forwarded('create_pr')).toHaveLength(before + 1);
    } finally {
      await c.close();
      await served.close();
      await impatient.close();
    }
  });

  it('A3 the server refuses a tool call whose digest is not its arguments own', async () => {
    const good = toolCallDigest('github', 'delete_repo', { repo: 'acme/payments' });
    const bad = toolCallDigest('github', 'delete_repo', { repo: 'acme/other' });
    const otherTool = toolCallDigest('github', 'get_file', { repo: 'acme/payments' });
    const submit = (toolCall: { server: string; tool: string; arguments: string; call_digest: string }) =>
      agentSdk.submitAccessRequest({
        action: 'mcp:github:delete_repo',
        resource: 'github://acme/payments',
        intent: { purpose: 'x', task_id: 'digest-check' },
        context: { tool_call: toolCall },
      });
    const refused = await submit({
      server: 'github',
      tool: 'delete_repo',
      arguments: good.canonical,
      call_digest: bad.digest,
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CountersignApiError);
    expect((refused as CountersignApiError).code).toBe('CS_ARGUMENTS_DIGEST_MISMATCH');
    const notCanonical = await submit({
      server: 'github',
      tool: 'delete_repo',
      arguments: '{ "repo": "acme/payments" }',
      call_digest: good.digest,
    }).catch((e: unknown) => e);
    expect((notCanonical as CountersignApiError).code).toBe('CS_INVALID_REQUEST');
    const anotherTool = await submit({
      server: 'github',
      tool: 'delete_repo',
      arguments: good.canonical,
      call_digest: otherTool.digest,
    }).catch((e: unknown) => e);
    expect((anotherTool as CountersignApiError).code).toBe('CS_ARGUMENTS_DIGEST_MISMATCH');
  });

  it('cancelling a pending call withdraws its request', async () => {
    const controller = new AbortController();
    const call = client.callTool(
      {
        name: 'github__create_pr',
        arguments: { repo: 'acme/payments', branch: 'main', title: 'Never mind' },
      },
      { signal: controller.signal, timeout: 60_000 },
    );
    const id = await pendingId();
    controller.abort('changed my mind');
    await expect(call).rejects.toThrow();
    await expect.poll(() => statusOf(id), { timeout: 5_000, interval: 50 }).toBe('withdrawn');
    expect(forwarded('create_pr').some((l) => l.args.title === 'Never mind')).toBe(false);
  });

  it('an upstream that crashes mid-call is reported as a tool error, and the next call starts it again', async () => {
    const result = (await client.callTool({ name: 'docs__crash', arguments: { code: 3 } })) as ToolResult;
    expect(result.isError).toBe(true);
    expect(errorOf(result).code).toBe('CS_UPSTREAM_FAILED');
    expect(text(result)).toMatch(/upstream docs failed/);
    const after = (await client.callTool({
      name: 'docs__search',
      arguments: { query: 'again' },
    })) as ToolResult;
    expect(text(after)).toBe('3 results for again');
  });

  it('the session tool chain goes into the next request as context', async () => {
    const req = await requestOf(
      (await client.callTool({ name: 'docs__search', arguments: { query: 'chain' } })) as ToolResult,
    );
    const chain = JSON.parse(req!.canonical).context.tool_chain as Array<{ tool: string; summary: string }>;
    expect(chain.map((c) => c.tool)).toContain('github__delete_repo');
    expect(chain.find((c) => c.tool === 'github__delete_repo')!.summary).toBe('refused: denied');
  });

  it('a v1 client (@modelcontextprotocol/sdk) works against the gateway over Streamable HTTP', async () => {
    const v1 = new V1Client({ name: 'v1-client', version: '1.32.2' });
    await v1.connect(new V1StreamableHTTPClientTransport(new URL(`${running.url}/mcp`)));
    try {
      const { tools } = await v1.listTools();
      expect(tools.map((t) => t.name)).toContain('docs__search');
      const ok = (await v1.callTool({ name: 'docs__search', arguments: { query: 'v1' } })) as ToolResult;
      expect(text(ok)).toBe('3 results for v1');
      const denied = (await v1.callTool({
        name: 'github__delete_repo',
        arguments: { repo: 'acme/payments' },
      })) as ToolResult;
      expect(denied.isError).toBe(true);
      expect(text(denied)).toMatch(/^CS_DENIED:/);
    } finally {
      await v1.close();
    }
  });

  it('one gateway serves several agents, one per route; a route can require a bearer token; DPoP binds the second agent', async () => {
    const { privateJwk } = await registerKeyAgent(live.server.deps.ctx, 'report-agent', { owner: 'data' });
    const reportKey = join(live.home, 'report-agent.jwk');
    writeFileSync(reportKey, JSON.stringify(privateJwk), { mode: 0o600 });
    const routeSecret = 'reports-route-secret';
    const multi = new McpGateway(
      configFor({
        agents: {
          coder: { id: AGENT, private_key_file: keyFile },
          reports: { id: 'report-agent', private_key_file: reportKey, dpop: true },
        },
        http: {
          host: 'localhost',
          port: 0,
          routes: [
            { path: '/mcp', agent: 'coder' },
            {
              path: '/mcp/reports',
              agent: 'reports',
              bearer_sha256: createHash('sha256').update(routeSecret).digest('hex'),
            },
          ],
        },
      }),
    );
    const served = await listenHttp(multi);
    try {
      const refused = await fetch(`${served.url}/mcp/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
      });
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CS_UNAUTHENTICATED');

      const reports = new Client({ name: 'report-client', version: '1.0.0' });
      await reports.connect(
        new StreamableHTTPClientTransport(new URL(`${served.url}/mcp/reports`), {
          requestInit: { headers: { authorization: `Bearer ${routeSecret}` } },
        }),
      );
      const coder = await connect(served.url);
      try {
        const asReports = await requestOf(
          (await reports.callTool({ name: 'docs__search', arguments: { query: 'q3' } })) as ToolResult,
        );
        expect(asReports.agentId).toBe('report-agent');
        expect(asReports.cnfJkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
        const asCoder = await requestOf(
          (await coder.callTool({ name: 'docs__search', arguments: { query: 'q3' } })) as ToolResult,
        );
        expect(asCoder.agentId).toBe(AGENT);
        expect(asCoder.cnfJkt).toBeNull();
      } finally {
        await reports.close();
        await coder.close();
      }
    } finally {
      await served.close();
      await multi.close();
    }
  });

  it('the gateway authenticates with a workload token too: from a file (re-read on each call) or the environment', async () => {
    await registerWorkloadAgent(live.server.deps.ctx, {
      id: 'ci-agent',
      owner: 'app',
      issuer: K8S,
      subject: 'system:serviceaccount:ci:ci-agent',
    });
    const project = () =>
      mint(k8sKey, Date.now(), kubernetesClaims(K8S, 'countersign', 'ci', 'ci-agent'), { lifetime: 3600 });
    const tokenFile = join(live.home, 'projected-token');
    writeFileSync(tokenFile, await project());
    process.env.CS_GATEWAY_TEST_TOKEN = await project();
    const workload = new McpGateway(
      configFor({
        agents: { file: { token_file: tokenFile }, env: { token_env: 'CS_GATEWAY_TEST_TOKEN' } },
        http: {
          host: 'localhost',
          port: 0,
          routes: [
            { path: '/mcp', agent: 'file' },
            { path: '/env', agent: 'env' },
          ],
        },
      }),
    );
    const served = await listenHttp(workload);
    const viaFile = await connect(served.url);
    const viaEnv = new Client({ name: 'env-client', version: '1.0.0' });
    await viaEnv.connect(new StreamableHTTPClientTransport(new URL(`${served.url}/env`)));
    try {
      const first = await requestOf(
        (await viaFile.callTool({ name: 'docs__search', arguments: { query: 'ci' } })) as ToolResult,
      );
      expect(first.agentId).toBe('ci-agent');
      // The kubelet rotates the token: the next call reads the new one.
      writeFileSync(tokenFile, await project());
      expect(
        (
          await requestOf(
            (await viaFile.callTool({ name: 'docs__search', arguments: { query: 'ci 2' } })) as ToolResult,
          )
        ).agentId,
      ).toBe('ci-agent');
      expect(
        (
          await requestOf(
            (await viaEnv.callTool({ name: 'docs__search', arguments: { query: 'ci' } })) as ToolResult,
          )
        ).agentId,
      ).toBe('ci-agent');
      // A token that does not verify fails closed: a tool error with the server's code, nothing forwarded.
      writeFileSync(tokenFile, 'not-a-token');
      const before = forwarded('search').length;
      const refused = (await viaFile.callTool({
        name: 'docs__search',
        arguments: { query: 'ci 3' },
      })) as ToolResult;
      expect(refused.isError).toBe(true);
      expect(errorOf(refused).code).toMatch(/^CS_(TOKEN_INVALID|UNAUTHENTICATED)$/);
      expect(forwarded('search')).toHaveLength(before);
    } finally {
      delete process.env.CS_GATEWAY_TEST_TOKEN;
      await viaFile.close();
      await viaEnv.close();
      await served.close();
      await workload.close();
    }
  });

  it('a 2026-07-28 client (version negotiation) is served per request, with the same checks', async () => {
    const modern = new Client(
      { name: 'modern-client', version: '2.4.0' },
      { versionNegotiation: { mode: 'auto' } },
    );
    await modern.connect(new StreamableHTTPClientTransport(new URL(`${running.url}/mcp`)));
    try {
      expect(modern.getProtocolEra()).toBe('modern');
      expect(modern.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      const ok = (await modern.callTool({
        name: 'docs__search',
        arguments: { query: 'modern' },
      })) as ToolResult;
      expect(text(ok)).toBe('3 results for modern');
      expect((await requestOf(ok)).agentId).toBe(AGENT);
      const denied = (await modern.callTool({
        name: 'github__delete_repo',
        arguments: { repo: 'acme/payments' },
      })) as ToolResult;
      expect(errorOf(denied).code).toBe('CS_DENIED');

      const controller = new AbortController();
      const call = modern.callTool(
        {
          name: 'github__create_pr',
          arguments: { repo: 'acme/payments', branch: 'main', title: 'Modern cancel' },
        },
        { signal: controller.signal, timeout: 60_000 },
      );
      const id = await pendingId();
      controller.abort('changed my mind');
      await expect(call).rejects.toThrow();
      await expect.poll(() => statusOf(id), { timeout: 5_000, interval: 50 }).toBe('withdrawn');
    } finally {
      await modern.close();
    }
  });

  it('the CLI refuses a bad config with its code and the field at fault', () => {
    const bad = join(live.home, 'bad-gateway.yaml');
    writeFileSync(bad, `server: ${live.url}\nagents: {}\nupstreams: {}\nstdio: { agent: coder }\n`);
    const run = spawnSync(process.execPath, [CLI, 'mcp-gateway', '--config', bad], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('error CS_GATEWAY_CONFIG_INVALID: gateway config is invalid');
    expect(run.stderr).toContain('stdio.agent: no agent named coder');
  });

  it('over stdio: a local client launches `countersign mcp-gateway` and calls through it', async () => {
    const configFile = join(live.home, 'gateway.yaml');
    writeFileSync(
      configFile,
      `server: ${live.url}
agents:
  coder: { id: ${AGENT}, private_key_file: coding-agent.jwk }
upstreams:
  docs:
    command: ${JSON.stringify(process.execPath)}
    args: [--import, tsx, ${JSON.stringify(UPSTREAM)}]
    cwd: ${JSON.stringify(ROOT)}
    env: { UPSTREAM_LOG: ${JSON.stringify(upstreamLog)} }
  github:
    url: ${httpUpstreamUrl}
    tools:
      delete_repo: { resource: "github://{repo}" }
stdio: { agent: coder }
`,
    );
    let leaseId: string | null = null;
    const local = new Client({ name: 'local-client', version: '2.0.0' });
    await local.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'mcp-gateway', '--config', configFile],
        cwd: ROOT,
        stderr: 'pipe',
      }),
    );
    try {
      const ok = (await local.callTool({
        name: 'docs__search',
        arguments: { query: 'stdio' },
      })) as ToolResult;
      expect(text(ok)).toBe('3 results for stdio');
      const denied = (await local.callTool({
        name: 'github__delete_repo',
        arguments: { repo: 'acme/payments' },
      })) as ToolResult;
      expect(errorOf(denied).code).toBe('CS_DENIED');
      const req = await requestOf(ok);
      expect(JSON.parse(req!.canonical).context.tool_call.client).toBe('local-client/2.0.0');
      leaseId = req.leaseId;
      expect(leaseId).toMatch(/^lease_/);
    } finally {
      await local.close();
    }
    // The client went away: the session's task is completed, which revokes its leases.
    const leaseStatus = async () =>
      (await live.server.deps.ctx.store.read((tx) => tx.getLease(leaseId!)))?.status;
    await expect.poll(leaseStatus, { timeout: 5_000, interval: 50 }).toBe('revoked');
  });
});
