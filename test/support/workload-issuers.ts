/**
 * Workload-token issuers for tests, built with jose: a Kubernetes-shaped issuer and a
 * SPIFFE-shaped JWT-SVID issuer whose keys a local HTTP server (under test control) serves as
 * a JWKS. The server counts fetches, can rotate, remove or stop serving keys, and also plays
 * an attacker's key host (to prove `jku`/`x5u` are never fetched).
 */

import { appendFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DomainContext, registerAgent } from '@countersign/core';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface SigningKeyPair {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export async function newSigningKey(alg: 'RS256' | 'ES256' | 'EdDSA', kid: string): Promise<SigningKeyPair> {
  const pair = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey: pair.privateKey as CryptoKey, publicJwk };
}

/**
 * Registers an agent that proves itself with a workload token (no key of its own), bound to
 * one `issuer` + `subject`; owner `payments`, boundary `acme`, environment `production` unless given.
 */
export async function registerWorkloadAgent(
  ctx: DomainContext,
  agent: {
    id: string;
    issuer: string;
    subject: string;
    owner?: string;
    environment?: string;
    expiresAt?: number;
  },
): Promise<void> {
  const { issuer, subject, owner = 'payments', environment = 'production', ...rest } = agent;
  await registerAgent({
    ctx,
    actor: { type: 'operator', id: 'test' },
    input: { ...rest, owner, boundary: 'acme', environment, workloadIdentities: [{ issuer, subject }] },
  });
}

/** A JWKS host: `/<name>/jwks` serves the keys of that name; `fetches[name]` counts requests. */
export class JwksHost {
  readonly #server: Server;
  readonly #keys = new Map<string, JWK[]>();
  readonly fetches: Record<string, number> = {};
  /** Every path requested, in order (attacker URLs included). */
  readonly requests: string[] = [];
  #down = new Set<string>();
  port = 0;

  constructor() {
    this.#server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      this.requests.push(path);
      const name = /^\/([^/]+)\/jwks$/.exec(path)?.[1];
      if (name) this.fetches[name] = (this.fetches[name] ?? 0) + 1;
      if (!name || !this.#keys.has(name) || this.#down.has(name)) {
        res.writeHead(this.#down.has(name ?? '') ? 503 : 404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.#keys.get(name) }));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  setKeys(name: string, keys: readonly JWK[]): void {
    this.#keys.set(name, [...keys]);
  }

  /** Answers 503 for this set until `up`. */
  down(name: string): void {
    this.#down.add(name);
  }

  up(name: string): void {
    this.#down.delete(name);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export interface MintOptions {
  readonly header?: Record<string, unknown>;
  readonly claims?: Record<string, unknown>;
  /** Seconds from `now` (default 600). */
  readonly lifetime?: number;
  /** Epoch seconds for iat (default now). */
  readonly iat?: number;
  readonly key?: SigningKeyPair;
}

/** Mints a token as `issuer` would, with `key`, at the given clock time. */
export async function mint(
  key: SigningKeyPair,
  nowMs: number,
  claims: Record<string, unknown>,
  o: MintOptions = {},
): Promise<string> {
  const k = o.key ?? key;
  const iat = o.iat ?? Math.floor(nowMs / 1000);
  const body: Record<string, unknown> = { iat, exp: iat + (o.lifetime ?? 600), ...claims, ...o.claims };
  for (const [name, value] of Object.entries(body)) if (value === undefined) delete body[name];
  return new SignJWT(body)
    .setProtectedHeader({ alg: k.alg, kid: k.kid, ...o.header } as never)
    .sign(k.privateKey);
}

/** Claims of a Kubernetes projected service-account token. */
export function kubernetesClaims(issuer: string, audience: string, namespace: string, name: string) {
  return {
    iss: issuer,
    aud: [audience],
    sub: `system:serviceaccount:${namespace}:${name}`,
    'kubernetes.io': {
      namespace,
      serviceaccount: { name, uid: '3c1b4e2a-0000-4000-8000-000000000001' },
      pod: { name: `${name}-7d9f8b6c5-x2x4z`, uid: '3c1b4e2a-0000-4000-8000-000000000002' },
    },
  };
}

/** Claims of a SPIFFE JWT-SVID. */
export function svidClaims(issuer: string, audience: string, spiffeId: string) {
  return { iss: issuer, aud: [audience], sub: spiffeId };
}

/** Claims of a GitHub Actions OIDC token. */
export function githubClaims(audience: string, repository: string, environment: string) {
  return {
    iss: 'https://token.actions.githubusercontent.com',
    aud: audience,
    sub: `repo:${repository}:environment:${environment}`,
    repository,
    repository_owner: repository.split('/')[0],
    environment,
    ref: 'refs/heads/main',
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@refs/heads/main`,
    runner_environment: 'github-hosted',
  };
}

/** Appends YAML to a data dir's countersign.yaml (before the server loads it). */
export function appendConfig(home: string, yaml: string): void {
  appendFileSync(`${home}/countersign.yaml`, `\n${yaml}\n`);
}
