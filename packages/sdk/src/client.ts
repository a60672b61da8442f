/**
 * A small agent client: Web APIs only (fetch, Web Crypto through jose), no `node:*`, so it
 * runs in any JavaScript runtime. Identity comes from a token source (a private key, or a
 * platform token via a callback; a token file through `@countersign/sdk/node`); with `dpop`
 * every call carries a DPoP proof (RFC 9449) and the leases it receives are bound to that key.
 */
import type { AccessRequestWire, AccessTokenCredential, CredentialWire } from '@countersign/protocol';
import type { JWK } from 'jose';
import { DpopSigner } from './dpop.js';
import { type AgentCredentials, privateKeySource, type TokenSource } from './token-source.js';

export interface ClientOptions {
  /** Countersign's base URL as this agent reaches it, e.g. http://localhost:8787. */
  readonly server: string;
  /**
   * Countersign's issuer (its external URL): the audience of private-key assertions and the
   * base of every DPoP `htu`. Read from the server's RFC 8414 metadata when not given.
   */
  readonly audience?: string;
  readonly fetch?: typeof fetch;
  /** Where the identity token comes from. */
  readonly tokenSource?: TokenSource;
  /** Shorthand for `tokenSource: privateKeySource({ agentId, privateJwk })`. */
  readonly agentId?: string;
  readonly privateJwk?: JWK;
  /** Send a DPoP proof with every call: `true` makes a fresh non-extractable ES256 key. */
  readonly dpop?: boolean | DpopSigner;
}

/** An error answer from the server, with its stable code. */
export class CountersignApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'CountersignApiError';
  }
}

/** The request was still pending when `timeoutMs` ran out; it may still be decided later. */
export class AccessRequestTimeoutError extends Error {
  constructor(readonly requestId: string) {
    super(`access request ${requestId} is still pending`);
    this.name = 'AccessRequestTimeoutError';
  }
}

export interface AccessRequestParams {
  readonly action: string;
  readonly resource: string;
  readonly intent: { readonly purpose: string; readonly task_id: string; readonly ticket?: string };
  readonly context?: {
    readonly environment?: string;
    readonly on_behalf_of?: string;
    readonly tool_chain?: ReadonlyArray<{
      tool: string;
      source?: 'trusted' | 'untrusted' | 'unknown';
      summary?: string;
    }>;
    readonly model_output?: string;
    /** The MCP tool call this request stands for (the MCP gateway sets it): see docs/mcp-gateway.md. */
    readonly tool_call?: {
      readonly server: string;
      readonly tool: string;
      /** RFC 8785 canonical JSON of the arguments. */
      readonly arguments: string;
      readonly call_digest: string;
      readonly session?: string;
      readonly client?: string;
    };
  };
  readonly ttl_seconds?: number;
}

export interface RequestAccessOptions {
  /** Give up waiting for a review after this long (default 10 minutes). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Defaults to a fresh UUID, so a retried call never makes a second request. */
  readonly idempotencyKey?: string;
  /** Called once when the request goes to review (to log its id, or tell someone). */
  readonly onPending?: (request: AccessRequestWire) => void;
}

/** The terminal answer to one access request. */
export type AccessResult =
  | {
      readonly status: 'allowed';
      readonly requestId: string;
      readonly taskId: string;
      readonly leaseId: string | null;
      /**
       * The credential, handed over once: null only if an earlier read already received it
       * (another process polling the same request).
       */
      readonly credential: CredentialWire | null;
      /** The approval receipt (after a review), verifiable offline against the JWKS. */
      readonly receipt: string | null;
      readonly request: AccessRequestWire;
    }
  | {
      readonly status: 'denied' | 'expired' | 'withdrawn' | 'cancelled';
      readonly requestId: string;
      readonly taskId: string;
      /** Why, in words: the determining policies' reasons, or what ended the review. */
      readonly reason: string;
      readonly request: AccessRequestWire;
    };

export interface TaskCompletion {
  readonly task_id: string;
  readonly status: 'completed' | 'failed';
  readonly already_completed: boolean;
  readonly revoked_leases: readonly string[];
  /** Leases whose downstream revocation is not confirmed yet: the server keeps retrying. */
  readonly pending_revocations?: readonly string[];
}

/** One lease as the server shows it (never the credential). */
export interface LeaseSummary {
  readonly lease_id: string;
  readonly kind: string;
  readonly status: 'issuing' | 'active' | 'revoke_pending' | 'revoked';
  /** What the lease means now: `expired` once its TTL passed. */
  readonly state: string;
  readonly expires_at: string;
  readonly revoke_reason: string | null;
  readonly [member: string]: unknown;
}

/** One (action, resource) pair for `forbiddenActions`. */
export interface ForbiddenCheck {
  readonly action: string;
  readonly resource: string;
}

export interface ForbiddenActionsResult {
  /** One per check, in order: true only where an explicit forbid policy denies it. */
  readonly forbidden: readonly boolean[];
  readonly invalid: readonly { readonly index: number; readonly code: string; readonly message: string }[];
  /** The policy version that answered (the last call's, if several); null for no checks. */
  readonly policyVersion: string | null;
}

/** The most checks the server takes in one call. */
const MAX_FORBIDDEN_CHECKS = 256;

export interface TaskHeartbeat {
  readonly task_id: string;
  readonly status: 'running';
  readonly idle_timeout_seconds: number | null;
  readonly leases: readonly LeaseSummary[];
}

/** RFC 7662 §2.2 response; the extra members are Countersign's. */
export interface IntrospectionResponse {
  readonly active: boolean;
  readonly sub?: string;
  readonly aud?: string | string[];
  readonly exp?: number;
  readonly jti?: string;
  readonly task_id?: string;
  readonly lease_id?: string;
  readonly cnf?: { readonly jkt: string };
  readonly [member: string]: unknown;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
/** The server holds a long poll at most this long (seconds). */
const MAX_WAIT_SECONDS = 60;

function reasonOf(request: AccessRequestWire): string {
  switch (request.status) {
    case 'denied':
      return request.decision.reasons.join('; ') || 'denied by policy or by a reviewer';
    case 'expired':
      return 'the review deadline passed without a decision';
    case 'withdrawn':
      return 'the request was withdrawn';
    case 'cancelled':
      return 'the review was cancelled (the agent was suspended)';
    default:
      return request.status;
  }
}

export class CountersignClient {
  readonly #fetch: typeof fetch;
  readonly #server: string;
  readonly #source: TokenSource;
  readonly #dpopOption: boolean | DpopSigner;
  #dpop: Promise<DpopSigner> | null = null;
  #audience: string | undefined;
  #lastTaskId: string | undefined;

  constructor(options: ClientOptions) {
    if (!options.server) throw new TypeError('server is required');
    this.#server = options.server.replace(/\/+$/, '');
    this.#fetch = options.fetch ?? fetch;
    this.#audience = options.audience?.replace(/\/+$/, '');
    if (options.tokenSource) this.#source = options.tokenSource;
    else if (options.agentId && options.privateJwk)
      this.#source = privateKeySource({ agentId: options.agentId, privateJwk: options.privateJwk });
    else throw new TypeError('give a tokenSource, or agentId and privateJwk');
    this.#dpopOption = options.dpop ?? false;
  }

  /** The DPoP signer, or null when DPoP is off. */
  dpop(): Promise<DpopSigner> | null {
    if (this.#dpopOption === false) return null;
    this.#dpop ??=
      this.#dpopOption === true ? DpopSigner.generate() : Promise.resolve(this.#dpopOption as DpopSigner);
    return this.#dpop;
  }

  async audience(): Promise<string> {
    if (!this.#audience) {
      const res = await this.#fetch(`${this.#server}/.well-known/oauth-authorization-server`, {
        headers: { accept: 'application/json' },
      });
      if (!res.ok)
        throw new CountersignApiError(res.status, `HTTP_${res.status}`, 'no server metadata', null);
      this.#audience = ((await res.json()) as { issuer: string }).issuer.replace(/\/+$/, '');
    }
    return this.#audience;
  }

  /** Authorization (and DPoP) headers for one call to `path` on Countersign. */
  async #authHeaders(method: string, path: string): Promise<Record<string, string>> {
    const audience = await this.audience();
    const token = await this.#source.token(audience);
    const signer = await this.dpop();
    if (!signer) return { authorization: `Bearer ${token}` };
    // htu is the issuer URL plus the path: what the server compares it with (RFC 9449 §4.3).
    return {
      authorization: `DPoP ${token}`,
      dpop: await signer.proof(method, `${audience}${path}`, token),
    };
  }

  async #json(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<unknown> {
    const h: Record<string, string> = {
      accept: 'application/json',
      ...(await this.#authHeaders(method, path.split('?')[0]!)),
      ...headers,
    };
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await this.#fetch(`${this.#server}${path}`, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new CountersignApiError(
        res.status,
        err?.code ?? `HTTP_${res.status}`,
        err?.message ?? `HTTP ${res.status}`,
        parsed,
      );
    }
    return parsed;
  }

  /** Submits one request and returns the server's first answer (possibly `pending`). */
  submitAccessRequest(
    params: AccessRequestParams,
    options: { idempotencyKey?: string; signal?: AbortSignal } = {},
  ): Promise<AccessRequestWire> {
    this.#lastTaskId = params.intent.task_id;
    const headers: Record<string, string> = options.idempotencyKey
      ? { 'idempotency-key': options.idempotencyKey }
      : {};
    return this.#json(
      'POST',
      '/v1/access-requests',
      params,
      headers,
      options.signal,
    ) as Promise<AccessRequestWire>;
  }

  /**
   * Reads a request, waiting up to `waitSeconds` (max 60) for it to leave `pending`. With
   * `callDigest` (an MCP tool call's digest) the server answers CS_ARGUMENTS_MISMATCH, and
   * hands over nothing, unless the request stands for exactly that call.
   */
  getRequest(
    id: string,
    waitSeconds = 0,
    signal?: AbortSignal,
    options: { callDigest?: string } = {},
  ): Promise<AccessRequestWire> {
    const digest = options.callDigest ? `&call_digest=${encodeURIComponent(options.callDigest)}` : '';
    const path = `/v1/access-requests/${encodeURIComponent(id)}?wait=${waitSeconds}${digest}`;
    return this.#json('GET', path, undefined, {}, signal) as Promise<AccessRequestWire>;
  }

  /**
   * Asks for one access and resolves when the request is terminal: allowed (with the
   * credential and, after a review, the receipt) or denied / expired / withdrawn / cancelled
   * (with the reason). Rejects with AccessRequestTimeoutError when still pending after
   * `timeoutMs` (withdraw it, or wait more with `getRequest`), and with the signal's reason
   * when aborted.
   */
  async requestAccess(
    params: AccessRequestParams,
    options: RequestAccessOptions = {},
  ): Promise<AccessResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    let request = await this.submitAccessRequest(params, {
      idempotencyKey: options.idempotencyKey ?? crypto.randomUUID(),
      ...(signal ? { signal } : {}),
    });
    let credential = request.credential ?? null;
    if (request.status === 'pending') options.onPending?.(request);
    while (request.status === 'pending') {
      const left = deadline - Date.now();
      if (left <= 0) throw new AccessRequestTimeoutError(request.id);
      signal?.throwIfAborted();
      request = await this.getRequest(
        request.id,
        Math.max(1, Math.min(MAX_WAIT_SECONDS, Math.ceil(left / 1000))),
        signal,
      );
      credential = request.credential ?? credential;
    }
    if (request.status === 'allowed') {
      return {
        status: 'allowed',
        requestId: request.id,
        taskId: request.task_id,
        leaseId: request.lease_id,
        credential,
        receipt: request.receipt ?? null,
        request,
      };
    }
    return {
      status: request.status,
      requestId: request.id,
      taskId: request.task_id,
      reason: reasonOf(request),
      request,
    };
  }

  /**
   * Which of these (action, resource) pairs would policy forbid outright for this agent
   * (deny by an explicit forbid; a default deny is not "forbidden")? One answer per check, in
   * order. Each call of at most 256 checks is one audited server call; more are sent in
   * several. A name the server's grammar refuses is reported in `invalid` and as not forbidden.
   */
  async forbiddenActions(
    checks: readonly ForbiddenCheck[],
    options: { signal?: AbortSignal } = {},
  ): Promise<ForbiddenActionsResult> {
    const forbidden: boolean[] = [];
    const invalid: ForbiddenActionsResult['invalid'][number][] = [];
    let policyVersion: string | null = null;
    for (let start = 0; start < checks.length; start += MAX_FORBIDDEN_CHECKS) {
      const slice = checks.slice(start, start + MAX_FORBIDDEN_CHECKS);
      const answer = (await this.#json(
        'POST',
        '/v1/access-requests/forbidden',
        { checks: slice.map((c) => ({ action: c.action, resource: c.resource })) },
        {},
        options.signal,
      )) as {
        forbidden: boolean[];
        invalid: ForbiddenActionsResult['invalid'][number][];
        policy_version: string;
      };
      if (!Array.isArray(answer?.forbidden) || answer.forbidden.length !== slice.length)
        throw new CountersignApiError(
          502,
          'CS_BAD_ANSWER',
          'the server answered a different number of checks',
          answer,
        );
      forbidden.push(...answer.forbidden.map((f) => f === true));
      for (const i of answer.invalid ?? []) invalid.push({ ...i, index: i.index + start });
      policyVersion = answer.policy_version;
    }
    return { forbidden, invalid, policyVersion };
  }

  withdraw(id: string): Promise<AccessRequestWire> {
    return this.#json(
      'POST',
      `/v1/access-requests/${encodeURIComponent(id)}/withdraw`,
    ) as Promise<AccessRequestWire>;
  }

  /** Completes a task (by default the last one asked for): every lease it holds is revoked. */
  completeTask(taskId: string | undefined = this.#lastTaskId): Promise<TaskCompletion> {
    if (!taskId) throw new TypeError('no task to complete: pass its id');
    return this.#json('POST', `/v1/tasks/${encodeURIComponent(taskId)}/complete`) as Promise<TaskCompletion>;
  }

  /**
   * Headers to present a lease to a resource server: `Authorization: DPoP <lease>` plus a
   * proof for exactly this method and URL when the lease is DPoP-bound, Bearer otherwise.
   */
  async leaseHeaders(
    credential: CredentialWire | Pick<AccessTokenCredential, 'access_token' | 'token_type'>,
    method: string,
    url: string,
  ): Promise<Record<string, string>> {
    if (!('access_token' in credential) || !('token_type' in credential)) {
      throw new TypeError('this credential is not a token to present (a database role or a secret)');
    }
    if (credential.token_type !== 'DPoP') return { authorization: `Bearer ${credential.access_token}` };
    const signer = await this.dpop();
    if (!signer) throw new TypeError('this lease is DPoP-bound but the client has no DPoP key');
    return {
      authorization: `DPoP ${credential.access_token}`,
      dpop: await signer.proof(method, url, credential.access_token),
    };
  }

  /** Ends a task as failed: like completion, every lease it holds is revoked. */
  failTask(taskId: string, reason?: string): Promise<TaskCompletion> {
    return this.#json(
      'POST',
      `/v1/tasks/${encodeURIComponent(taskId)}/fail`,
      reason === undefined ? undefined : { reason },
    ) as Promise<TaskCompletion>;
  }

  /** Says the task is still running; answers its leases (so a revoked one shows up). */
  heartbeat(taskId: string): Promise<TaskHeartbeat> {
    return this.#json('POST', `/v1/tasks/${encodeURIComponent(taskId)}/heartbeat`) as Promise<TaskHeartbeat>;
  }

  /** RFC 7662 introspection of one of this agent's own credentials (with its DPoP proof, if any). */
  async introspect(token: string): Promise<IntrospectionResponse> {
    const res = await this.#fetch(`${this.#server}/oauth/introspect`, {
      method: 'POST',
      headers: {
        ...(await this.#authHeaders('POST', '/oauth/introspect')),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }).toString(),
    });
    const body = (await res.json()) as IntrospectionResponse & {
      error?: string;
      error_description?: string;
      code?: string;
    };
    if (!res.ok)
      throw new CountersignApiError(
        res.status,
        String(body.code ?? body.error),
        String(body.error_description),
        body,
      );
    return body;
  }
}

export type { AgentCredentials };
