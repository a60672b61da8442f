import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CountersignError,
  listUnusedAgents,
  parseDuration,
  registerAgent,
  suspendAgent,
} from '@countersign/core';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { openLocal } from '../local.js';

const OPERATOR = { type: 'operator' as const, id: process.env.USER ?? 'operator' };

export interface AgentAddOptions {
  readonly home: string;
  readonly id: string;
  readonly owner: string;
  readonly boundary: string;
  readonly env: string;
  readonly trustTier?: string;
  readonly publicKey?: string;
  /** Federated workload identity (issuer + subject); without --public-key no key is generated. */
  readonly workloadIssuer?: string;
  readonly workloadSubject?: string;
  /** A duration (`90d`, `12h`) after which the agent's tokens are refused. */
  readonly expires?: string;
}

function readPublicJwk(file: string): JWK {
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      `cannot read a JWK from ${file}: ${(error as Error).message}`,
    );
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      'the public key must be an Ed25519 JWK (kty OKP, crv Ed25519)',
    );
  }
  if ('d' in jwk) {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      'that file holds a PRIVATE key: register the public half only',
    );
  }
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
}

export function keyFileName(agentId: string): string {
  return `${agentId.replace(/[^A-Za-z0-9._-]+/g, '_')}.jwk`;
}

/**
 * Registers an agent. With a workload identity and no public key the agent authenticates with
 * its platform's tokens only; with neither, its Ed25519 key pair is generated here.
 */
export async function agentAdd(
  options: AgentAddOptions,
): Promise<{ id: string; keyFile: string | null; thumbprint: string | null; expiresAt: number | null }> {
  if ((options.workloadIssuer === undefined) !== (options.workloadSubject === undefined)) {
    throw new CountersignError('CS_INVALID_REQUEST', '--workload-issuer and --workload-subject go together');
  }
  const workload = options.workloadIssuer
    ? [{ issuer: options.workloadIssuer, subject: options.workloadSubject! }]
    : [];
  let publicJwk: JWK | null = null;
  let privateJwk: JWK | null = null;
  if (options.publicKey) {
    publicJwk = readPublicJwk(options.publicKey);
  } else if (workload.length === 0) {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    privateJwk = await exportJWK(pair.privateKey);
    publicJwk = { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x! };
  }
  const thumbprint = publicJwk ? await calculateJwkThumbprint(publicJwk) : null;
  const expiresInSeconds = options.expires === undefined ? null : parseDuration(options.expires);
  const keyFile = privateJwk ? join(options.home, 'agents', keyFileName(options.id)) : null;
  if (keyFile && existsSync(keyFile)) {
    throw new CountersignError('CS_AGENT_EXISTS', `a key file already exists at ${keyFile}`);
  }
  const local = await openLocal(options.home);
  let expiresAt: number | null = null;
  try {
    const ctx = local.deps.ctx;
    expiresAt = expiresInSeconds === null ? null : ctx.clock.now() + expiresInSeconds * 1000;
    await registerAgent({
      ctx,
      actor: OPERATOR,
      input: {
        id: options.id,
        owner: options.owner,
        boundary: options.boundary,
        environment: options.env,
        ...(options.trustTier ? { trustTier: options.trustTier } : {}),
        publicJwk,
        jwkThumbprint: thumbprint,
        workloadIdentities: workload,
        expiresAt,
      },
    });
  } finally {
    await local.close();
  }
  if (keyFile && privateJwk) {
    mkdirSync(join(options.home, 'agents'), { recursive: true, mode: 0o700 });
    writeFileSync(
      keyFile,
      `${JSON.stringify({ ...privateJwk, kid: thumbprint, agent_id: options.id }, null, 2)}\n`,
      {
        mode: 0o600,
      },
    );
    chmodSync(keyFile, 0o600);
  }
  return { id: options.id, keyFile, thumbprint, expiresAt };
}

/** Every agent with its workload identity bindings. */
export async function agentList(home: string) {
  const local = await openLocal(home);
  try {
    const store = local.deps.ctx.store;
    const agents = await store.listAgents();
    return await Promise.all(
      agents.map(async (a) => ({
        ...a,
        workloadIdentities: (await store.read((tx) => tx.listWorkloadIdentities(a.id))).map((b) => ({
          issuer: b.issuer,
          subject: b.subject,
        })),
      })),
    );
  } finally {
    await local.close();
  }
}

/** Agents with no authenticated call for `days` days (NHI1: offboarding candidates). */
export async function agentUnused(home: string, days: number) {
  const local = await openLocal(home);
  try {
    return await listUnusedAgents({ ctx: local.deps.ctx, input: { days } });
  } finally {
    await local.close();
  }
}

export async function agentSuspend(home: string, id: string, reason?: string) {
  const local = await openLocal(home);
  try {
    const result = await suspendAgent({
      ctx: local.deps.ctx,
      actor: OPERATOR,
      input: { agentId: id, ...(reason ? { reason } : {}) },
    });
    // Downstream credentials (database roles) are removed now; what fails is retried by the server's reaper.
    const pending = await local.deps.reaper.revokeNow(result.pendingRevocations);
    return { ...result, pendingRevocations: pending };
  } finally {
    await local.close();
  }
}

/** Reads an agent key file written by `agent add` (or any Ed25519 private JWK). */
export function readAgentKey(file: string): { agentId: string | undefined; privateJwk: JWK } {
  let jwk: JWK & { agent_id?: string };
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      `cannot read the agent key ${file}: ${(error as Error).message}`,
    );
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
    throw new CountersignError('CS_INVALID_REQUEST', `${file} is not an Ed25519 private JWK`);
  }
  const { agent_id, ...privateJwk } = jwk;
  return { agentId: agent_id, privateJwk };
}
