/**
 * Test harness: a real Countersign on a real SQLite file in a temp dir, with the example
 * policies and catalog, driven through `app.request()` (no socket) with real signed JWTs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Clock, type DomainContext, registerAgent } from '@countersign/core';
import { type CountersignServer, createServer, loadConfig, type ServerOverrides } from '@countersign/server';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { initHome } from '../../packages/cli/src/commands/init.js';

export const ISSUER = 'http://localhost:8787';

export class TestClock implements Clock {
  constructor(public ms = Date.parse('2026-11-24T10:00:00Z')) {}
  now(): number {
    return this.ms;
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export interface TestAgent {
  readonly id: string;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
}

export interface AssertionOverrides {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** Seconds until exp (default 60). */
  lifetime?: number;
  /** Sign with this key instead of the agent's. */
  key?: JWK;
  iat?: number;
}

export interface Harness {
  readonly server: CountersignServer;
  readonly home: string;
  readonly clock: TestClock;
  addAgent(
    id: string,
    attrs?: { owner?: string; boundary?: string; environment?: string },
  ): Promise<TestAgent>;
  assertion(agent: TestAgent, overrides?: AssertionOverrides): Promise<string>;
  call(
    method: string,
    path: string,
    options?: {
      agent?: TestAgent;
      token?: string;
      body?: unknown;
      rawBody?: string | Uint8Array;
      headers?: Record<string, string>;
    },
  ): Promise<Response>;
  requestAccess(
    agent: TestAgent,
    body: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: any }>;
  /** Stops the server; the temp data dir is removed unless `keepHome` (a restart on the same data follows). */
  close(options?: { keepHome?: boolean }): Promise<void>;
}

/** Inserts an active reviewer (in `oncall`) with a live console session; returns the session token. */
export async function insertReviewerSession(ctx: DomainContext, id: string): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    await tx.insertReviewer({
      id: `rev_${id}`,
      email: `${id}@acme.dev`,
      groups: ['oncall'],
      status: 'active',
      webauthnUserId: `wa_${id}`,
      createdAt: now,
    });
    await tx.insertSession({
      tokenHash: createHash('sha256').update(token).digest('hex'),
      reviewerId: `rev_${id}`,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + 3_600_000,
      revokedAt: null,
    });
  });
  return token;
}

export async function newKeyPair(): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const privateJwk = await exportJWK(pair.privateKey);
  return { privateJwk, publicJwk: { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x! } };
}

/** Registers an agent with a fresh Ed25519 key; owner `app`, boundary `acme`, environment `production` unless given. */
export async function registerKeyAgent(
  ctx: DomainContext,
  id: string,
  attrs: { owner?: string; boundary?: string; environment?: string } = {},
): Promise<TestAgent> {
  const { privateJwk, publicJwk } = await newKeyPair();
  await registerAgent({
    ctx,
    actor: { type: 'operator', id: 'test' },
    input: {
      id,
      owner: attrs.owner ?? 'app',
      boundary: attrs.boundary ?? 'acme',
      environment: attrs.environment ?? 'production',
      publicJwk,
      jwkThumbprint: await calculateJwkThumbprint(publicJwk),
    },
  });
  return { id, privateJwk, publicJwk };
}

export async function startHarness(
  options: {
    clock?: TestClock;
    home?: string;
    configure?: (home: string) => void;
    overrides?: Omit<ServerOverrides, 'clock' | 'logLevel'>;
  } = {},
): Promise<Harness> {
  const home = options.home ?? mkdtempSync(join(tmpdir(), 'countersign-test-'));
  await initHome({ home, dev: true });
  options.configure?.(home);
  const clock = options.clock ?? new TestClock();
  const server = await createServer(loadConfig({ home, port: 8787, issuer: ISSUER }), {
    ...options.overrides,
    clock,
    logLevel: 'silent',
  });
  const app = server.app;

  const harness: Harness = {
    server,
    home,
    clock,
    addAgent: (id, attrs) => registerKeyAgent(server.deps.ctx, id, attrs),
    async assertion(agent, o = {}) {
      const key = await importJWK(o.key ?? agent.privateJwk, 'EdDSA');
      const iat = o.iat ?? Math.floor(clock.now() / 1000);
      return new SignJWT({
        iss: agent.id,
        sub: agent.id,
        aud: ISSUER,
        jti: crypto.randomUUID(),
        iat,
        exp: iat + (o.lifetime ?? 60),
        ...o.claims,
      })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', ...o.header } as never)
        .sign(key);
    },
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const token = o.token ?? (o.agent ? await harness.assertion(o.agent) : undefined);
      if (token !== undefined && !('authorization' in headers)) headers.authorization = `Bearer ${token}`;
      let body: string | Uint8Array | undefined;
      if (o.rawBody !== undefined) body = o.rawBody;
      else if (o.body !== undefined) body = JSON.stringify(o.body);
      if (body !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json';
      return app.request(path, { method, headers, body });
    },
    async requestAccess(agent, body, headers) {
      const res = await harness.call('POST', '/v1/access-requests', {
        agent,
        body,
        ...(headers ? { headers } : {}),
      });
      return { status: res.status, json: await res.json() };
    },
    async close(closeOptions = {}) {
      await server.close();
      if (!options.home && !closeOptions.keepHome) rmSync(home, { recursive: true, force: true });
    },
  };
  return harness;
}

/**
 * For suites that open many reviews for one agent to test something else (properties, fuzzing):
 * turns the per-agent cap on pending reviews off in the data dir's config. The cap has its own
 * suite (test/pending-cap.test.ts).
 */
export function withoutPendingCap(home: string): void {
  const file = join(home, 'countersign.yaml');
  const text = readFileSync(file, 'utf8');
  const next = text.replace(/max_pending_per_agent: \d+/, 'max_pending_per_agent: null');
  if (next === text) throw new Error('the config has no max_pending_per_agent to turn off');
  writeFileSync(file, next);
}

/** A well-formed request body; override any field. */
export function body(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    action: 'read',
    resource: 'postgres://staging/app/orders',
    intent: { purpose: 'Reconcile orders', task_id: 'task-1' },
    ...overrides,
  };
}
