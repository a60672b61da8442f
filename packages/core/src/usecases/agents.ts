import type { AuditActor } from '../audit.js';
import { CountersignError } from '../errors.js';
import type { AgentRecord } from '../records.js';
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
  readonly publicJwk: Readonly<Record<string, unknown>>;
  readonly jwkThumbprint: string;
}

/** Registers an agent. One key belongs to one agent only (NHI9: no identity reuse). */
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
    publicJwk: input.publicJwk,
    jwkThumbprint: input.jwkThumbprint,
    createdAt: now,
  };
  await ctx.store.transaction(async (tx) => {
    await tx.insertAgent(agent);
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
