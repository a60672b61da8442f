/**
 * Agents and reviewers talking to real instances over HTTP: agents sign one-time assertions
 * (the SDK's createAssertion), reviewers hold a session cookie and a software passkey. Every
 * call returns the status and body as received, for history recorders.
 */
import { inviteReviewer, registerAgent } from '@countersign/core';
import { createAssertion } from '@countersign/sdk';
import { type CountersignServer, createServer, loadConfig, newSessionToken } from '@countersign/server';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { SoftPasskey } from './soft-passkey.js';

export interface Answer {
  readonly status: number;
  readonly body: any;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

export class HttpAgent {
  constructor(
    readonly id: string,
    readonly privateJwk: JWK,
    readonly audience: string,
  ) {}

  assertion(): Promise<string> {
    return createAssertion({ agentId: this.id, privateJwk: this.privateJwk }, this.audience);
  }

  async call(base: string, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token ?? (await this.assertion())}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return answer(res);
  }

  /** RFC 7662 introspection of a token, as this agent (its own leases only). */
  async introspect(base: string, token: string): Promise<Answer> {
    const res = await fetch(`${base}/oauth/introspect`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await this.assertion()}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }).toString(),
    });
    return answer(res);
  }
}

/**
 * Opens the data directory in this process, as the CLI does (createServer on the configured
 * store, which also migrates it), for set-up: registering agents and inviting reviewers
 * without paying for a CLI process each.
 */
export async function openLocal(
  home: string,
  env: Record<string, string>,
  issuer: string,
): Promise<CountersignServer> {
  return createServer(loadConfig({ home, port: 8787, issuer, env: { ...process.env, ...env } }), {
    logLevel: 'silent',
  });
}

/** Registers agents (as `countersign agent add --public-key` does) and returns HTTP clients for them. */
export async function registerAgents(
  local: CountersignServer,
  audience: string,
  agents: ReadonlyArray<{ id: string; owner: string; env?: string }>,
): Promise<HttpAgent[]> {
  const out: HttpAgent[] = [];
  for (const a of agents) {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const privateJwk = await exportJWK(pair.privateKey);
    const publicJwk = { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x! };
    await registerAgent({
      ctx: local.deps.ctx,
      actor: { type: 'operator', id: 'test' },
      input: {
        id: a.id,
        owner: a.owner,
        boundary: 'acme',
        environment: a.env ?? 'production',
        publicJwk,
        jwkThumbprint: await calculateJwkThumbprint(publicJwk),
      },
    });
    out.push(new HttpAgent(a.id, privateJwk, audience));
  }
  return out;
}

export class HttpReviewer {
  readonly passkey: SoftPasskey;
  #cookie = '';

  constructor(
    readonly email: string,
    /** The issuer's origin: WebAuthn origin, RP ID and the Origin header come from it. */
    readonly origin: string,
  ) {
    this.passkey = new SoftPasskey(origin);
  }

  async #post(base: string, path: string, body: unknown): Promise<Answer> {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: this.origin,
        ...(this.#cookie ? { cookie: this.#cookie } : {}),
      },
      body: JSON.stringify(body),
    });
    const set = res.headers.get('set-cookie');
    const m = set ? /(?:__Host-)?cs_session=([^;]+)/.exec(set) : null;
    if (m) this.#cookie = `${set!.startsWith('__Host-') ? '__Host-' : ''}cs_session=${m[1]}`;
    return answer(res);
  }

  /** Any console POST with this reviewer's session and origin (policy adoption, ...). */
  post(base: string, path: string, body: unknown): Promise<Answer> {
    return this.#post(base, path, body);
  }

  /** Enrolls with the invite token (passkey registration) and keeps the session. */
  async enroll(base: string, token: string): Promise<void> {
    const options = await this.#post(base, '/v1/console/enroll/options', { token });
    if (options.status !== 200) throw new Error(`enroll options: ${JSON.stringify(options.body)}`);
    const response = this.passkey.create(options.body.options);
    const verified = await this.#post(base, '/v1/console/enroll/verify', {
      token,
      challenge_id: options.body.challenge_id,
      response,
    });
    if (verified.status !== 200) throw new Error(`enroll verify: ${JSON.stringify(verified.body)}`);
  }

  /** The decision challenge for one verdict (the server derives it from the stored request). */
  options(base: string, requestId: string, verdict: 'approve' | 'deny'): Promise<Answer> {
    return this.#post(base, `/v1/console/requests/${requestId}/decision/options`, { verdict });
  }

  /** Answers a decision challenge from `options` with a passkey assertion. */
  decideWith(
    base: string,
    requestId: string,
    verdict: 'approve' | 'deny',
    options: { challenge_id: string; options: { challenge: string; rpId?: string } },
  ): Promise<Answer> {
    return this.#post(base, `/v1/console/requests/${requestId}/decision`, {
      verdict,
      challenge_id: options.challenge_id,
      response: this.passkey.get(options.options),
    });
  }

  /** One verdict: decision options, then the passkey assertion over the server's challenge. */
  async decide(
    base: string,
    requestId: string,
    verdict: 'approve' | 'deny',
    decideOn = base,
  ): Promise<Answer> {
    const options = await this.options(base, requestId, verdict);
    if (options.status !== 200) return options;
    return this.decideWith(decideOn, requestId, verdict, options.body);
  }

  /** The console's live stream (SSE) as parsed events, until `signal` aborts. */
  async events(
    base: string,
    onEvent: (event: string, data: unknown) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await fetch(`${base}/v1/console/events`, { headers: { cookie: this.#cookie }, signal });
    if (res.status !== 200 || !res.body) throw new Error(`events: ${res.status}`);
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        for (;;) {
          const end = buffer.indexOf('\n\n');
          if (end < 0) break;
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: ?(.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: ?(.*)$/m.exec(block)?.[1] ?? '';
          onEvent(event, data ? JSON.parse(data) : null);
        }
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }
}

/** Invites reviewers (as `countersign reviewer invite` does) and enrolls each with a software passkey over HTTP. */
export async function enrollReviewers(
  local: CountersignServer,
  base: string,
  origin: string,
  people: ReadonlyArray<{ email: string; groups: string[] }>,
): Promise<HttpReviewer[]> {
  const out: HttpReviewer[] = [];
  for (const p of people) {
    const { token, tokenHash } = newSessionToken();
    await inviteReviewer({
      ctx: local.deps.ctx,
      actor: { type: 'operator', id: 'test' },
      input: { email: p.email, groups: p.groups, tokenHash, ttlSeconds: 3600 },
    });
    const reviewer = new HttpReviewer(p.email, origin);
    await reviewer.enroll(base, token);
    out.push(reviewer);
  }
  return out;
}
