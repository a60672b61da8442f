/**
 * Agent assertions minted ahead of a load run, so the load generator never signs while it
 * measures. Same shape as the SDK's `createAssertion` (EdDSA JWT, iss = sub = agent id,
 * aud = the server's issuer, unique jti), signed with `node:crypto` for speed.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type DomainContext, registerAgent } from '@countersign/core';

export interface AgentKey {
  readonly agentId: string;
  readonly key: KeyObject;
}

/** Reads a private JWK written by `countersign agent add` (it carries `agent_id`). */
export function readAgentKey(file: string): AgentKey {
  const jwk = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  const agentId = jwk.agent_id;
  if (!agentId) throw new Error(`${file} has no agent_id`);
  const key = createPrivateKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }, format: 'jwk' });
  return { agentId, key };
}

/** Registers `bench-agent` (owner billing, production) with a fresh Ed25519 key in an in-process server. */
export async function registerBenchAgent(ctx: DomainContext): Promise<AgentKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' });
  await registerAgent({
    ctx,
    actor: { type: 'operator', id: 'bench' },
    input: {
      id: 'bench-agent',
      owner: 'billing',
      boundary: 'acme',
      environment: 'production',
      publicJwk: { kty: 'OKP', crv: 'Ed25519', x: x! },
      jwkThumbprint: 'bench-thumbprint',
    },
  });
  return { agentId: 'bench-agent', key: privateKey };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A pool of one-shot assertions. `next()` hands each out once; when empty it signs on demand and counts it. */
export class AssertionPool {
  readonly #agent: AgentKey;
  readonly #audience: string;
  readonly #lifetime: number;
  readonly #header = b64({ alg: 'EdDSA', typ: 'JWT' });
  readonly #prefix = randomBytes(6).toString('base64url');
  #counter = 0;
  #tokens: string[] = [];
  #index = 0;
  /** Assertions signed during the run because the pool ran dry (should stay 0). */
  signedOnDemand = 0;

  constructor(agent: AgentKey, audience: string, lifetimeSeconds = 300) {
    if (lifetimeSeconds > 300) throw new Error('assertion lifetime must be at most 300 s');
    this.#agent = agent;
    this.#audience = audience;
    this.#lifetime = lifetimeSeconds;
  }

  mint(): string {
    const iat = Math.floor(Date.now() / 1000);
    const payload = b64({
      iss: this.#agent.agentId,
      sub: this.#agent.agentId,
      aud: this.#audience,
      iat,
      exp: iat + this.#lifetime,
      jti: `${this.#prefix}.${(this.#counter++).toString(36)}`,
    });
    const input = `${this.#header}.${payload}`;
    return `${input}.${sign(null, Buffer.from(input), this.#agent.key).toString('base64url')}`;
  }

  /** Replaces the pool with `count` fresh assertions; returns the milliseconds it took. */
  fill(count: number): number {
    const start = performance.now();
    const tokens = new Array<string>(count);
    for (let i = 0; i < count; i++) tokens[i] = this.mint();
    this.#tokens = tokens;
    this.#index = 0;
    this.signedOnDemand = 0;
    return performance.now() - start;
  }

  next(): string {
    if (this.#index < this.#tokens.length) return this.#tokens[this.#index++]!;
    this.signedOnDemand++;
    return this.mint();
  }

  get used(): number {
    return this.#index;
  }
}
