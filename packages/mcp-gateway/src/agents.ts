/**
 * The agents the gateway acts as: one SDK client each, authenticated with any SDK method
 * (a registered private key, a workload token file, a token from the environment), with
 * DPoP if configured. The gateway is an SDK client of Countersign, never a second policy engine.
 */
import { readFileSync } from 'node:fs';
import { CountersignClient, callbackSource, type TokenSource } from '@countersign/sdk';
import { tokenFileSource } from '@countersign/sdk/node';
import type { JWK } from 'jose';
import type { AgentConfig, GatewayConfig } from './config.js';
import { GatewayError } from './errors.js';

function readPrivateJwk(path: string): JWK {
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(path, 'utf8')) as JWK;
  } catch (error) {
    throw new GatewayError(
      'CS_GATEWAY_AGENT_KEY_INVALID',
      `cannot read the agent key ${path}: ${(error as Error).message}`,
    );
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
    throw new GatewayError('CS_GATEWAY_AGENT_KEY_INVALID', `${path} is not a private Ed25519 JWK`);
  }
  return jwk;
}

function tokenSourceFor(agent: AgentConfig): TokenSource | null {
  if (agent.token_file) return tokenFileSource(agent.token_file);
  if (agent.token_env) {
    const name = agent.token_env;
    return callbackSource(() => process.env[name] ?? '');
  }
  return null;
}

export function agentClient(
  config: GatewayConfig,
  agent: AgentConfig,
  fetchImpl?: typeof fetch,
): CountersignClient {
  const common = {
    server: config.server,
    ...(config.audience ? { audience: config.audience } : {}),
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
    dpop: agent.dpop,
  };
  const source = tokenSourceFor(agent);
  if (source) return new CountersignClient({ ...common, tokenSource: source });
  return new CountersignClient({
    ...common,
    agentId: agent.id!,
    privateJwk: readPrivateJwk(agent.private_key_file!),
  });
}
