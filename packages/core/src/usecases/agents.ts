import type { AuditActor } from '../audit.js';
import { CountersignError } from '../errors.js';
import type { AgentRecord, WorkloadIdentityBinding } from '../records.js';
import type { DomainContext } from './context.js';
import { endLeases } from './end-leases.js';
import { enqueueReviewNotification } from './notify.js';

// A SPIFFE ID (spiffe://trust-domain/path) or a slug. ASCII only: no look-alike ids (D3).
const AGENT_ID = /^(spiffe:\/\/[a-z0-9.-]{1,255}(\/[A-Za-z0-9._-]{1,128}){1,16}|[a-z0-9][a-z0-9._-]{0,127})$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export function validateAgentId(id: string): string {
  if (!AGENT_ID.test(id) || id.split('/').some((s) => s === '.' || s === '..')) {
    throw new CountersignError(
      'CS_INVALID_IDENTIFIER',
      'agent id must be spiffe://trust-domain/path or a lowercase slug ([a-z0-9][a-z0-9._-]*)',
    );
  }
  return id;
}

export function validateName(field: string, value: string): string {
  if (!NAME.test(value))
    throw new CountersignError('CS_INVALID_IDENTIFIER', `${field} must match ${NAME.source}`);
  return value;
}

export interface RegisterAgentInput {
  readonly id: string;
  readonly owner: string;
  readonly boundary: string;
  readonly environment: string;
  readonly trustTier?: string;
  /** Ed25519 public JWK for private-key JWT assertions; omit for a workload-identity-only agent. */
  readonly publicJwk?: Readonly<Record<string, unknown>> | null;
  readonly jwkThumbprint?: string | null;
  /** Federated workload identities (issuer + subject) this agent authenticates as. */
  readonly workloadIdentities?: ReadonlyArray<{ readonly issuer: string; readonly subject: string }>;
  /** Epoch ms after which the agent's tokens are refused. */
  readonly expiresAt?: number | null;
}

const ISSUER_URL = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/;
const SUBJECT = /^[\x21-\x7e]{1,512}$/;

function validateBinding(b: { issuer: string; subject: string }): { issuer: string; subject: string } {
  if (!ISSUER_URL.test(b.issuer) || b.issuer.length > 512) {
    throw new CountersignError('CS_INVALID_IDENTIFIER', 'a workload issuer must be an http(s) URL');
  }
  // Printable ASCII only: a subject is compared byte for byte, so no look-alikes (D3).
  if (!SUBJECT.test(b.subject)) {
    throw new CountersignError(
      'CS_INVALID_IDENTIFIER',
      'a workload subject must be 1-512 printable ASCII characters without spaces',
    );
  }
  return { issuer: b.issuer, subject: b.subject };
}

/**
 * Registers an agent. One key and one workload identity belong to one agent only (NHI9,
 * THREATS.md B13: no identity reuse): the store's unique keys refuse a second registration.
 */
export async function registerAgent({
  ctx,
  input,
  actor,
}: {
  ctx: DomainContext;
  input: RegisterAgentInput;
  actor: AuditActor;
}): Promise<AgentRecord> {
  const now = ctx.clock.now();
  const agent: AgentRecord = {
    id: validateAgentId(input.id),
    owner: validateName('owner', input.owner),
    boundary: validateName('boundary', input.boundary),
    environment: validateName('environment', input.environment),
    trustTier: validateName('trust tier', input.trustTier ?? 'standard'),
    status: 'active',
    publicJwk: input.publicJwk ?? null,
    jwkThumbprint: input.jwkThumbprint ?? null,
    createdAt: now,
    expiresAt: input.expiresAt ?? null,
    lastSeenAt: null,
  };
  if ((agent.publicJwk === null) !== (agent.jwkThumbprint === null)) {
    throw new TypeError('publicJwk and jwkThumbprint go together');
  }
  if (agent.expiresAt !== null && agent.expiresAt <= now) {
    throw new CountersignError('CS_INVALID_REQUEST', 'the agent expiry must be in the future');
  }
  const bindings: WorkloadIdentityBinding[] = (input.workloadIdentities ?? []).map((b) => ({
    ...validateBinding(b),
    agentId: agent.id,
    createdAt: now,
  }));
  if (agent.publicJwk === null && bindings.length === 0) {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      'an agent needs a public key or at least one workload identity to authenticate with',
    );
  }
  await ctx.store.transaction(async (tx) => {
    await tx.insertAgent(agent);
    for (const binding of bindings) await tx.insertWorkloadIdentity(binding);
    await tx.appendAudit(
      {
        type: 'agent.added',
        actor,
        data: {
          agent_id: agent.id,
          owner: agent.owner,
          boundary: agent.boundary,
          environment: agent.environment,
          key_thumbprint: agent.jwkThumbprint,
          workload_identities: bindings.map((b) => ({ issuer: b.issuer, subject: b.subject })),
          expires_at: agent.expiresAt === null ? null : new Date(agent.expiresAt).toISOString(),
        },
      },
      now,
    );
  });
  return agent;
}

/**
 * The kill switch (NHI1, ASI10): in one unit of work the agent is suspended, every lease it
 * holds is revoked and its pending reviews are cancelled. Its tokens fail from then on.
 */
export async function suspendAgent({
  ctx,
  input,
  actor,
}: {
  ctx: DomainContext;
  input: { agentId: string; reason?: string };
  actor: AuditActor;
}): Promise<{ revokedLeases: number; cancelledRequests: number; pendingRevocations: string[] }> {
  const now = ctx.clock.now();
  const result = await ctx.store.transaction(async (tx) => {
    const agent = await tx.getAgent(input.agentId);
    if (!agent) throw new CountersignError('CS_NOT_FOUND', `no agent ${input.agentId}`);
    if (!(await tx.setAgentStatus(agent.id, 'active', 'suspended'))) {
      throw new CountersignError('CS_REQUEST_CLOSED', `agent ${agent.id} is already suspended`);
    }
    const revoked = await endLeases(ctx, tx, { agentId: agent.id }, 'agent_suspended', actor, now);
    const cancelled: string[] = [];
    for (const pending of await tx.listPendingRequests({ agentId: agent.id }, 10_000)) {
      if (await tx.finishPendingRequest(pending.id, 'cancelled', now, null)) {
        cancelled.push(pending.id);
        await enqueueReviewNotification(ctx, tx, 'review.decided', pending, 'cancelled', now);
        await tx.appendAudit(
          { type: 'review.cancelled', actor, requestId: pending.id, data: { reason: 'agent_suspended' } },
          now,
        );
      }
    }
    await tx.appendAudit(
      {
        type: 'agent.suspended',
        actor,
        data: {
          agent_id: agent.id,
          reason: input.reason ?? null,
          leases_revoked: revoked.length,
          reviews_cancelled: cancelled.length,
        },
      },
      now,
    );
    return { revokedLeases: revoked, cancelledRequests: cancelled };
  });
  for (const id of result.cancelledRequests) ctx.events.requestChanged(id);
  return {
    revokedLeases: result.revokedLeases.length,
    cancelledRequests: result.cancelledRequests.length,
    pendingRevocations: result.revokedLeases.filter((l) => l.status === 'revoke_pending').map((l) => l.id),
  };
}

/**
 * Agents with no authenticated call for `days` days (never-seen agents count from their
 * registration): the candidates for offboarding (NHI1). Last-seen is recorded at most about
 * once a minute, so the answer is exact to the minute.
 */
export async function listUnusedAgents({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { days: number };
}): Promise<Array<AgentRecord & { idleSince: number }>> {
  if (!Number.isFinite(input.days) || input.days < 0) {
    throw new CountersignError('CS_INVALID_REQUEST', 'days must be a non-negative number');
  }
  const cutoff = ctx.clock.now() - input.days * 86_400_000;
  return (await ctx.store.listAgents())
    .map((a) => ({ ...a, idleSince: a.lastSeenAt ?? a.createdAt }))
    .filter((a) => a.idleSince <= cutoff)
    .sort((a, b) => a.idleSince - b.idleSince);
}
