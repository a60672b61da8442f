/**
 * The MCP gateway: an MCP server in front of upstream MCP servers, where every `tools/call`
 * first becomes a Countersign access request. Allowed calls are forwarded with exactly the
 * arguments the request named; denied ones come back as tool errors naming the reason and
 * code; reviewed ones wait (with progress notifications, cancellable) for people.
 *
 * Transport stays thin (STYLE.md 5): no policy here. The gateway computes what the request
 * says (action, resource, intent, context, argument digest) and obeys the answer.
 */
import { randomUUID } from 'node:crypto';
import { CountersignError, toolCallDigest } from '@countersign/core';
import type { AccessRequestWire } from '@countersign/protocol';
import { LIMITS } from '@countersign/protocol';
import { type AccessRequestParams, CountersignApiError, type CountersignClient } from '@countersign/sdk';
import type { CallToolResult, Tool } from '@modelcontextprotocol/client';
import { Server, type ServerContext } from '@modelcontextprotocol/server';
import { agentClient } from './agents.js';
import type { GatewayConfig } from './config.js';
import type { ToolErrorCode } from './errors.js';
import { fixedResource, mapResource, ResourceMappingError } from './resource.js';
import { GATEWAY_NAME, GATEWAY_VERSION, Upstream } from './upstream.js';

/** Separates the upstream from the tool in the names clients see: `github__create_pr`. */
export const NAMESPACE_SEPARATOR = '__';
/** `_meta` key naming an earlier request whose approval this call redeems. */
export const REQUEST_ID_META = 'countersign.dev/request_id';
/** `_meta` key where a client may say why it makes this call (added to the intent). */
export const PURPOSE_META = 'countersign.dev/purpose';
/** `_meta` key of a refused call's structured error. */
export const ERROR_META = 'countersign.dev/error';

const ACTION_NAME = /^[a-z][a-z0-9_.:-]{0,127}$/;
/** Long-poll slice between two progress notifications, in seconds. */
const PROGRESS_EVERY_SECONDS = 5;
/** How long one agent's answer on forbidden tools is reused for `tools/list` (ms). */
const VISIBILITY_CACHE_MS = 30_000;

export interface GatewayOptions {
  /** fetch used to reach Countersign (tests inject nothing; kept for proxies and tracing). */
  readonly fetch?: typeof fetch;
  /** Where the gateway writes what it does (never arguments or credentials). */
  readonly log?: (line: Record<string, unknown>) => void;
}

/** One client session: its task, and the tool calls it made (the next requests' tool chain). */
export interface GatewaySession {
  readonly id: string;
  readonly agent: string;
  readonly taskId: string;
  readonly chain: { tool: string; source: 'unknown'; summary: string }[];
  /** `name/version` from the client's initialize, when it gave one (its claim). */
  client: string | undefined;
  /** Whether a request was made in this task (so it is worth completing). */
  used: boolean;
}

export function toolError(
  code: ToolErrorCode | string,
  message: string,
  requestId: string | null = null,
): CallToolResult {
  return {
    isError: true,
    content: [
      { type: 'text', text: `${code}: ${message}${requestId ? ` (Countersign request ${requestId})` : ''}` },
    ],
    _meta: { [ERROR_META]: { code, message, request_id: requestId } },
  };
}

const refuse = (
  code: ToolErrorCode | string,
  message: string,
  requestId: string | null = null,
): { refused: CallToolResult } => ({ refused: toolError(code, message, requestId) });

function deniedError(request: AccessRequestWire): CallToolResult {
  switch (request.status) {
    case 'denied': {
      const reasons = request.decision.reasons.join('; ') || 'no policy permits it';
      const code = request.decision.error_code ?? 'CS_DENIED';
      const by = request.decision.outcome === 'review' ? 'a reviewer denied it' : 'policy denies it';
      return toolError(code, `Countersign refused this tool call: ${by}: ${reasons}`, request.id);
    }
    case 'expired':
      return toolError('CS_REVIEW_EXPIRED', 'the review deadline passed without a decision', request.id);
    case 'withdrawn':
      return toolError('CS_REQUEST_WITHDRAWN', 'the request was withdrawn', request.id);
    case 'cancelled':
      return toolError(
        'CS_REVIEW_CANCELLED',
        'the review was cancelled (the agent was suspended)',
        request.id,
      );
    default:
      return toolError('CS_DENIED', `unexpected request status ${request.status}`, request.id);
  }
}

function apiError(error: unknown): CallToolResult {
  if (error instanceof CountersignApiError) return toolError(error.code, error.message);
  return toolError(
    'CS_SERVER_UNREACHABLE',
    `Countersign could not be asked, so the call is refused (fail closed): ${(error as Error).message}`,
  );
}

interface PreparedCall {
  readonly upstream: Upstream;
  readonly tool: string;
  readonly args: Record<string, unknown>;
  readonly argumentsCanonical: string;
  /** SHA-256 over upstream, tool and arguments: what an approval binds to. */
  readonly callDigest: string;
  readonly action: string;
  readonly resource: string;
  readonly ttlSeconds: number | undefined;
}

export class McpGateway {
  readonly config: GatewayConfig;
  readonly #upstreams = new Map<string, Upstream>();
  readonly #clients = new Map<string, CountersignClient>();
  readonly #log: (line: Record<string, unknown>) => void;
  /** Per agent: which listed tools are forbidden outright, and when the server said so. */
  readonly #visibility = new Map<string, { at: number; key: string; hidden: ReadonlySet<string> }>();

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.config = config;
    this.#log = options.log ?? (() => {});
    for (const [name, upstream] of Object.entries(config.upstreams))
      this.#upstreams.set(name, new Upstream(name, upstream));
    for (const [name, agent] of Object.entries(config.agents))
      this.#clients.set(name, agentClient(config, agent, options.fetch));
  }

  client(agent: string): CountersignClient {
    const client = this.#clients.get(agent);
    if (!client) throw new TypeError(`no agent named ${agent}`);
    return client;
  }

  newSession(agent: string): GatewaySession {
    const id = randomUUID();
    return { id, agent, taskId: `mcp-${id}`, chain: [], client: undefined, used: false };
  }

  /** Completes the session's task (revoking any lease it holds); best effort. */
  async endSession(session: GatewaySession): Promise<void> {
    if (!session.used) return;
    session.used = false;
    await this.client(session.agent)
      .completeTask(session.taskId)
      .catch((error: unknown) =>
        this.#log({ msg: 'task completion failed', task: session.taskId, error: String(error) }),
      );
  }

  /**
   * The namespaced tools of every upstream that answers. For an agent, with `hide_forbidden`
   * on (for the gateway or the upstream), tools that policy forbids outright are left out, as
   * the server answers for that agent; if it cannot answer, every tool is listed (the calls
   * are still checked, and fail closed).
   */
  async listTools(agent?: string): Promise<Tool[]> {
    const tools: Tool[] = [];
    const checks: { name: string; action: string; resource: string }[] = [];
    for (const upstream of this.#upstreams.values()) {
      let listed: readonly Tool[];
      try {
        listed = await upstream.listTools();
      } catch (error) {
        this.#log({
          msg: 'upstream unavailable for tools/list',
          upstream: upstream.name,
          error: String(error),
        });
        continue;
      }
      const hide = upstream.config.hide_forbidden ?? this.config.hide_forbidden;
      for (const tool of listed) {
        const name = `${upstream.name}${NAMESPACE_SEPARATOR}${tool.name}`;
        tools.push({
          ...tool,
          name,
          description: `[${upstream.name}, checked by Countersign] ${tool.description ?? ''}`.trim(),
        });
        const action = `mcp:${upstream.name}:${tool.name.toLowerCase()}`;
        // A name no policy can address is listed; its calls are refused anyway.
        if (!hide || !ACTION_NAME.test(action) || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(tool.name)) continue;
        // A resource mapped from the arguments is not known before the call: such a tool is
        // listed (asking about a stand-in resource could hide a tool whose calls are allowed).
        const resource = fixedResource(upstream.config.tools[tool.name]?.resource, upstream.name, tool.name);
        if (resource !== null) checks.push({ name, action, resource });
      }
    }
    if (agent === undefined || checks.length === 0) return tools;
    const hidden = await this.#forbiddenTools(agent, checks);
    return tools.filter((t) => !hidden.has(t.name));
  }

  /** The listed tools policy forbids outright for this agent: cached briefly, fail open. */
  async #forbiddenTools(
    agent: string,
    checks: readonly { name: string; action: string; resource: string }[],
  ): Promise<ReadonlySet<string>> {
    const key = checks.map((c) => `${c.action} ${c.resource}`).join('\n');
    const now = Date.now();
    const cached = this.#visibility.get(agent);
    if (cached && cached.key === key && now - cached.at < VISIBILITY_CACHE_MS) return cached.hidden;
    try {
      const answer = await this.client(agent).forbiddenActions(checks);
      const hidden = new Set(checks.filter((_c, i) => answer.forbidden[i] === true).map((c) => c.name));
      this.#visibility.set(agent, { at: now, key, hidden });
      return hidden;
    } catch (error) {
      this.#log({
        level: 'warn',
        msg: 'Countersign could not say which tools are forbidden: listing them all (calls are still checked)',
        agent,
        error: String(error),
      });
      return new Set();
    }
  }

  #prepare(name: string, rawArgs: unknown): { call: PreparedCall } | { refused: CallToolResult } {
    const at = name.indexOf(NAMESPACE_SEPARATOR);
    const upstream = at > 0 ? this.#upstreams.get(name.slice(0, at)) : undefined;
    const tool = at > 0 ? name.slice(at + NAMESPACE_SEPARATOR.length) : '';
    if (!upstream || tool === '') return refuse('CS_TOOL_UNKNOWN', `no tool named ${JSON.stringify(name)}`);
    const action = `mcp:${upstream.name}:${tool.toLowerCase()}`;
    if (!ACTION_NAME.test(action) || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(tool))
      return refuse(
        'CS_TOOL_NAME_UNSUPPORTED',
        `tool name ${JSON.stringify(tool)} cannot be named in a policy action`,
      );
    const args = (rawArgs ?? {}) as Record<string, unknown>;
    if (typeof args !== 'object' || Array.isArray(args))
      return refuse('CS_ARGUMENTS_INVALID', 'arguments must be a JSON object');
    let canonical: string;
    let digest: string;
    try {
      ({ canonical, digest } = toolCallDigest(upstream.name, tool, args));
    } catch (error) {
      if (error instanceof CountersignError) return refuse('CS_ARGUMENTS_INVALID', error.message);
      throw error;
    }
    if (canonical.length > LIMITS.toolArguments)
      return refuse(
        'CS_ARGUMENTS_INVALID',
        `arguments are ${canonical.length} characters of canonical JSON; a reviewable call has at most ${LIMITS.toolArguments}`,
      );
    const rule = upstream.config.tools[tool];
    let resource: string;
    try {
      resource = mapResource(rule?.resource, upstream.name, tool, args);
    } catch (error) {
      if (error instanceof ResourceMappingError) return refuse('CS_RESOURCE_UNMAPPED', error.message);
      throw error;
    }
    return {
      call: {
        upstream,
        tool,
        args,
        argumentsCanonical: canonical,
        callDigest: digest,
        action,
        resource,
        ttlSeconds: rule?.ttl_seconds,
      },
    };
  }

  #requestFor(
    session: GatewaySession,
    call: PreparedCall,
    meta: Record<string, unknown>,
  ): AccessRequestParams {
    const purposeArg = call.args[this.config.purpose_argument];
    const metaPurpose = meta[PURPOSE_META];
    const stated = [metaPurpose, purposeArg].filter(
      (p): p is string => typeof p === 'string' && p.length > 0,
    );
    let purpose = `MCP tool call ${call.upstream.name}${NAMESPACE_SEPARATOR}${call.tool} by ${session.client ?? 'an unnamed client'}`;
    if (stated.length > 0) purpose += `. Stated purpose: ${stated.join(' / ')}`;
    // Control characters are refused by the server (they never reach a reviewer); drop them here.
    purpose = purpose
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, ' ')
      .slice(0, LIMITS.purpose);
    const chain = session.chain.slice(-this.config.tool_chain_length);
    return {
      action: call.action,
      resource: call.resource,
      intent: { purpose, task_id: session.taskId },
      context: {
        ...(this.config.environment ? { environment: this.config.environment } : {}),
        ...(chain.length > 0 ? { tool_chain: chain } : {}),
        tool_call: {
          server: call.upstream.name,
          tool: call.tool,
          arguments: call.argumentsCanonical,
          call_digest: call.callDigest,
          session: session.id,
          ...(session.client ? { client: session.client.slice(0, LIMITS.identifier) } : {}),
        },
      },
      ...(call.ttlSeconds !== undefined ? { ttl_seconds: call.ttlSeconds } : {}),
    };
  }

  #remember(session: GatewaySession, call: PreparedCall, summary: string): void {
    session.chain.push({
      tool: `${call.upstream.name}${NAMESPACE_SEPARATOR}${call.tool}`,
      source: 'unknown',
      summary,
    });
    if (session.chain.length > 32) session.chain.shift();
  }

  /** One `tools/call`: check with Countersign, then forward or refuse. */
  async callTool(
    session: GatewaySession,
    params: {
      name: string;
      arguments?: Record<string, unknown> | undefined;
      _meta?: Record<string, unknown> | undefined;
    },
    ctx: Pick<ServerContext['mcpReq'], 'signal' | 'notify' | '_meta'>,
  ): Promise<CallToolResult> {
    const prepared = this.#prepare(params.name, params.arguments);
    if ('refused' in prepared) return prepared.refused;
    const { call } = prepared;
    // The SDK may lift reserved keys (progressToken among them) out of params._meta into the context.
    const meta: Record<string, unknown> = { ...ctx._meta, ...params._meta };
    const client = this.client(session.agent);
    const progressToken = meta.progressToken as string | number | undefined;

    let request: AccessRequestWire;
    const redeem = meta[REQUEST_ID_META];
    try {
      if (typeof redeem === 'string') {
        request = await client.getRequest(redeem, 0, ctx.signal, { callDigest: call.callDigest });
        const refused = this.#mismatch(request, call);
        if (refused) return refused;
      } else {
        session.used = true;
        request = await client.submitAccessRequest(this.#requestFor(session, call, meta), {
          idempotencyKey: randomUUID(),
          signal: ctx.signal,
        });
      }
      if (request.status === 'pending') {
        const waited = await this.#wait(client, request, call, ctx, progressToken);
        if ('refused' in waited) return waited.refused;
        request = waited.request;
      }
    } catch (error) {
      if (ctx.signal.aborted) return toolError('CS_REQUEST_WITHDRAWN', 'the client cancelled the call');
      return apiError(error);
    }

    if (request.status !== 'allowed') {
      this.#remember(session, call, `refused: ${request.status}`);
      this.#log({
        msg: 'tool call refused',
        action: call.action,
        request: request.id,
        status: request.status,
      });
      return deniedError(request);
    }
    // A grant is one-shot: the server hands an allowed request's credential over once (in the
    // answer that allowed it, or on the first read after an approval). No credential means
    // this grant was already used for a call: fail closed.
    if (!request.credential)
      return toolError('CS_APPROVAL_USED', 'this approval was already used for a call', request.id);

    this.#log({ msg: 'tool call allowed', action: call.action, request: request.id });
    let result: CallToolResult;
    try {
      result = await call.upstream.callTool(call.tool, call.args, ctx.signal);
    } catch (error) {
      this.#remember(session, call, 'allowed; the upstream failed');
      return toolError(
        'CS_UPSTREAM_FAILED',
        `upstream ${call.upstream.name} failed: ${call.upstream.describeFailure(error)}`,
        request.id,
      );
    }
    this.#remember(
      session,
      call,
      result.isError ? 'allowed; the tool reported an error' : 'allowed; completed',
    );
    // Which Countersign request let this call through (the audit trail's key).
    return { ...result, _meta: { ...result._meta, [REQUEST_ID_META]: request.id } };
  }

  /**
   * A call that names an earlier request redeems its approval only for the very same call.
   * The server already refused a read naming another call digest (upstream, tool, arguments:
   * THREATS.md A3) before handing anything over; the action and resource are compared here
   * too, in case the gateway's mapping changed since the request was made.
   */
  #mismatch(request: AccessRequestWire, call: PreparedCall): CallToolResult | null {
    if (request.tool_call?.call_digest !== call.callDigest || request.action !== call.action)
      return toolError('CS_ARGUMENTS_MISMATCH', 'that request was for another tool call', request.id);
    if (request.resource !== call.resource)
      return toolError('CS_ARGUMENTS_MISMATCH', 'that request was for another resource', request.id);
    return null;
  }

  /** Waits for a pending request: progress while it waits, withdrawn if the client cancels. */
  async #wait(
    client: CountersignClient,
    pending: AccessRequestWire,
    call: PreparedCall,
    ctx: Pick<ServerContext['mcpReq'], 'signal' | 'notify'>,
    progressToken: string | number | undefined,
  ): Promise<{ request: AccessRequestWire } | { refused: CallToolResult }> {
    const deadline = pending.review ? Date.parse(pending.review.deadline_at) : Date.now();
    const limit =
      this.config.review_wait_seconds !== undefined
        ? Math.min(deadline + 2000, Date.now() + this.config.review_wait_seconds * 1000)
        : deadline + 2000;
    let request = pending;
    let progress = 0;
    const notify = async () => {
      if (progressToken === undefined) return;
      progress += 1;
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      await ctx
        .notify({
          method: 'notifications/progress',
          params: {
            progressToken,
            progress,
            message: `waiting for ${request.review?.reviewer_group ?? 'a reviewer'} to review Countersign request ${request.id} (${left} s left)`,
          },
        })
        .catch(() => {});
    };
    await notify();
    try {
      while (request.status === 'pending') {
        const left = limit - Date.now();
        if (left <= 0)
          return refuse(
            'CS_REVIEW_PENDING',
            `still waiting for review; repeat this exact call with _meta {"${REQUEST_ID_META}": "${request.id}"} to use the approval once it is given`,
            request.id,
          );
        const wait = Math.max(1, Math.min(PROGRESS_EVERY_SECONDS, Math.ceil(left / 1000)));
        request = await client.getRequest(request.id, wait, ctx.signal, { callDigest: call.callDigest });
        if (request.status === 'pending') await notify();
      }
      return { request };
    } catch (error) {
      if (ctx.signal.aborted) {
        // Client cancellation withdraws the request: nobody should review a call no one waits for.
        await client.withdraw(request.id).catch(() => {});
        this.#log({ msg: 'tool call cancelled; request withdrawn', request: request.id });
        return refuse(
          'CS_REQUEST_WITHDRAWN',
          'the client cancelled the call; the request was withdrawn',
          request.id,
        );
      }
      throw error;
    }
  }

  /** A low-level MCP server for one session (stdio connection, HTTP session or request). */
  serverFor(session: GatewaySession): Server {
    const server = new Server(
      { name: GATEWAY_NAME, version: GATEWAY_VERSION },
      {
        capabilities: { tools: { listChanged: false } },
        instructions:
          'Every tool call passes Countersign: routine calls run at once, forbidden ones return a tool error naming the reason, risky ones wait for a person (progress notifications are sent while they wait).',
      },
    );
    server.oninitialized = () => {
      const info = server.getClientVersion();
      if (info) session.client = `${info.name}/${info.version}`;
    };
    server.setRequestHandler('tools/list', async () => ({ tools: await this.listTools(session.agent) }));
    server.setRequestHandler('tools/call', async (request, ctx) => {
      if (!session.client) {
        const info = server.getClientVersion();
        if (info) session.client = `${info.name}/${info.version}`;
      }
      return this.callTool(
        session,
        request.params as {
          name: string;
          arguments?: Record<string, unknown>;
          _meta?: Record<string, unknown>;
        },
        ctx.mcpReq,
      );
    });
    return server;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#upstreams.values()].map((u) => u.close()));
  }
}
