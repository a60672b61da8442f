/**
 * A small agent client: Web APIs only (fetch, crypto via jose), no `node:*`, so it runs in
 * any JavaScript runtime. Each call signs a fresh one-time assertion (RFC 7523 shape).
 */
import type { AccessRequestWire } from '@countersign/protocol';
import { importJWK, type JWK, SignJWT } from 'jose';

export interface AgentCredentials {
  /** The agent's registered id: `iss` and `sub` of every assertion. */
  readonly agentId: string;
  /** The agent's private JWK (Ed25519). */
  readonly privateJwk: JWK;
}

export interface ClientOptions extends AgentCredentials {
  /** Countersign's base URL, e.g. http://localhost:8787. */
  readonly server: string;
  /** Audience for assertions; read from the server's RFC 8414 metadata when not given. */
  readonly audience?: string;
  readonly fetch?: typeof fetch;
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
  };
  readonly ttl_seconds?: number;
}

/** Signs a one-time assertion for `audience`, valid for `lifetimeSeconds` (at most 300). */
export async function createAssertion(
  credentials: AgentCredentials,
  audience: string,
  lifetimeSeconds = 60,
): Promise<string> {
  const key = await importJWK(credentials.privateJwk, 'EdDSA');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setIssuer(credentials.agentId)
    .setSubject(credentials.agentId)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(`${lifetimeSeconds}s`)
    .setJti(crypto.randomUUID())
    .sign(key);
}

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
  readonly [member: string]: unknown;
}

export class CountersignClient {
  readonly #options: ClientOptions;
  readonly #fetch: typeof fetch;
  readonly #server: string;
  #audience: string | undefined;

  constructor(options: ClientOptions) {
    if (!options.server) throw new TypeError('server is required');
    this.#options = options;
    this.#server = options.server.replace(/\/+$/, '');
    this.#fetch = options.fetch ?? fetch;
    this.#audience = options.audience;
  }

  async audience(): Promise<string> {
    if (!this.#audience) {
      const meta = (await this.#json('GET', '/.well-known/oauth-authorization-server', undefined, false)) as {
        issuer: string;
      };
      this.#audience = meta.issuer;
    }
    return this.#audience;
  }

  async #json(
    method: string,
    path: string,
    body?: unknown,
    auth = true,
    headers: Record<string, string> = {},
  ): Promise<unknown> {
    const h: Record<string, string> = { accept: 'application/json', ...headers };
    if (auth) h.authorization = `Bearer ${await createAssertion(this.#options, await this.audience())}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await this.#fetch(`${this.#server}${path}`, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
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

  /** Asks for one access. The answer carries the decision and, when allowed, the credential. */
  requestAccess(
    params: AccessRequestParams,
    options: { idempotencyKey?: string } = {},
  ): Promise<AccessRequestWire> {
    const headers: Record<string, string> = options.idempotencyKey
      ? { 'idempotency-key': options.idempotencyKey }
      : {};
    return this.#json('POST', '/v1/access-requests', params, true, headers) as Promise<AccessRequestWire>;
  }

  /** Reads a request, waiting up to `waitSeconds` (max 60) for it to leave `pending`. */
  getRequest(id: string, waitSeconds = 0): Promise<AccessRequestWire> {
    const path = `/v1/access-requests/${encodeURIComponent(id)}?wait=${waitSeconds}`;
    return this.#json('GET', path) as Promise<AccessRequestWire>;
  }

  withdraw(id: string): Promise<AccessRequestWire> {
    return this.#json(
      'POST',
      `/v1/access-requests/${encodeURIComponent(id)}/withdraw`,
    ) as Promise<AccessRequestWire>;
  }

  completeTask(taskId: string): Promise<TaskCompletion> {
    return this.#json('POST', `/v1/tasks/${encodeURIComponent(taskId)}/complete`) as Promise<TaskCompletion>;
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

  /** RFC 7662 introspection of one of this agent's own credentials. */
  async introspect(token: string): Promise<IntrospectionResponse> {
    const res = await this.#fetch(`${this.#server}/oauth/introspect`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await createAssertion(this.#options, await this.audience())}`,
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
