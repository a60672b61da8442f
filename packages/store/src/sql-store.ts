/**
 * The store contract implemented once over Kysely-compiled queries; dialect adapters supply
 * an Executor. Invariants are constraints and single-row conditional updates.
 */
import {
  type AccessRequestRecord,
  type AgentRecord,
  type AuditEvent,
  type AuditEventInput,
  CountersignError,
  chainEvent,
  type LeaseRecord,
  type LeaseSelector,
  type StoreTx,
} from '@countersign/core';
import type { Kysely, Selectable } from 'kysely';
import { type Executor, UniqueViolation } from './executor.js';
import type { Database } from './schema.js';

type Row<T extends keyof Database> = Selectable<Database[T]>;

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

function toAgent(r: Row<'agents'>): AgentRecord {
  return {
    id: r.id,
    owner: r.owner,
    boundary: r.boundary,
    environment: r.environment,
    trustTier: r.trust_tier,
    status: r.status as AgentRecord['status'],
    publicJwk: JSON.parse(r.public_jwk),
    jwkThumbprint: r.jwk_thumbprint,
    createdAt: num(r.created_at),
  };
}

function toRequest(r: Row<'access_requests'>): AccessRequestRecord {
  return {
    id: r.id,
    agentId: r.agent_id,
    action: r.action,
    resource: r.resource,
    taskId: r.task_id,
    status: r.status as AccessRequestRecord['status'],
    digest: r.digest,
    canonical: r.canonical,
    decision: JSON.parse(r.decision),
    risk: JSON.parse(r.risk),
    idempotencyKey: r.idempotency_key,
    bodyHash: r.body_hash,
    createdAt: num(r.created_at),
    decidedAt: numOrNull(r.decided_at),
    deadlineAt: numOrNull(r.deadline_at),
    leaseId: r.lease_id,
  };
}

function toLease(r: Row<'leases'>): LeaseRecord {
  return {
    id: r.id,
    requestId: r.request_id,
    agentId: r.agent_id,
    taskId: r.task_id,
    kind: r.kind,
    credentialId: r.credential_id,
    fingerprint: r.fingerprint,
    audience: r.audience,
    scope: JSON.parse(r.scope),
    issuedAt: num(r.issued_at),
    expiresAt: num(r.expires_at),
    status: r.status as LeaseRecord['status'],
    revokedAt: numOrNull(r.revoked_at),
    revokeReason: r.revoke_reason,
  };
}

export function toAuditEvent(r: Row<'audit_events'>): AuditEvent {
  return {
    seq: num(r.seq),
    id: r.id,
    at: r.at,
    type: r.type,
    actor: { type: r.actor_type as AuditEvent['actor']['type'], id: r.actor_id },
    requestId: r.request_id,
    data: JSON.parse(r.data),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface IdSource {
  next(prefix: string): string;
}

/** StoreTx over one executor (a connection inside a transaction, or a read connection). */
export class SqlTx implements StoreTx {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly exec: Executor,
    private readonly ids: IdSource,
  ) {}

  private async one<T extends keyof Database>(q: {
    compile(): import('kysely').CompiledQuery;
  }): Promise<Row<T> | null> {
    const rows = await this.exec.all<Row<T>>(q.compile());
    return rows[0] ?? null;
  }

  async getAgent(id: string) {
    const r = await this.one<'agents'>(this.db.selectFrom('agents').selectAll().where('id', '=', id));
    return r ? toAgent(r) : null;
  }

  async getAgentByThumbprint(thumbprint: string) {
    const r = await this.one<'agents'>(
      this.db.selectFrom('agents').selectAll().where('jwk_thumbprint', '=', thumbprint),
    );
    return r ? toAgent(r) : null;
  }

  async insertAgent(a: AgentRecord) {
    try {
      await this.exec.run(
        this.db
          .insertInto('agents')
          .values({
            id: a.id,
            owner: a.owner,
            boundary: a.boundary,
            environment: a.environment,
            trust_tier: a.trustTier,
            status: a.status,
            public_jwk: JSON.stringify(a.publicJwk),
            jwk_thumbprint: a.jwkThumbprint,
            created_at: a.createdAt,
          })
          .compile(),
      );
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw new CountersignError('CS_AGENT_EXISTS', `agent ${a.id} or its key is already registered`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async setAgentStatus(id: string, from: AgentRecord['status'], to: AgentRecord['status']) {
    const r = await this.exec.run(
      this.db
        .updateTable('agents')
        .set({ status: to })
        .where('id', '=', id)
        .where('status', '=', from)
        .compile(),
    );
    return r.changes === 1;
  }

  async consumeTokenId(issuer: string, tokenId: string, expiresAt: number) {
    try {
      await this.exec.run(
        this.db
          .insertInto('token_ids')
          .values({ issuer, token_id: tokenId, expires_at: expiresAt })
          .compile(),
      );
      return true;
    } catch (error) {
      if (error instanceof UniqueViolation) return false;
      throw error;
    }
  }

  async getRequest(id: string) {
    const r = await this.one<'access_requests'>(
      this.db.selectFrom('access_requests').selectAll().where('id', '=', id),
    );
    return r ? toRequest(r) : null;
  }

  async findRequestByIdempotencyKey(agentId: string, key: string) {
    const r = await this.one<'access_requests'>(
      this.db
        .selectFrom('access_requests')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('idempotency_key', '=', key),
    );
    return r ? toRequest(r) : null;
  }

  async insertRequest(x: AccessRequestRecord) {
    try {
      await this.exec.run(
        this.db
          .insertInto('access_requests')
          .values({
            id: x.id,
            agent_id: x.agentId,
            action: x.action,
            resource: x.resource,
            task_id: x.taskId,
            status: x.status,
            digest: x.digest,
            canonical: x.canonical,
            decision: JSON.stringify(x.decision),
            risk: JSON.stringify(x.risk),
            idempotency_key: x.idempotencyKey,
            body_hash: x.bodyHash,
            created_at: x.createdAt,
            decided_at: x.decidedAt,
            deadline_at: x.deadlineAt,
            lease_id: x.leaseId,
          })
          .compile(),
      );
    } catch (error) {
      if (error instanceof UniqueViolation && x.idempotencyKey !== null) {
        throw new CountersignError(
          'CS_IDEMPOTENCY_IN_FLIGHT',
          'a request with this Idempotency-Key is being processed',
          {
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  async finishPendingRequest(
    id: string,
    to: AccessRequestRecord['status'],
    at: number,
    leaseId: string | null,
  ) {
    const r = await this.exec.run(
      this.db
        .updateTable('access_requests')
        .set({ status: to, decided_at: at, lease_id: leaseId })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .compile(),
    );
    return r.changes === 1;
  }

  async listPendingRequests(filter: { agentId: string } | { deadlineBefore: number }, limit: number) {
    let q = this.db.selectFrom('access_requests').selectAll().where('status', '=', 'pending');
    q =
      'agentId' in filter
        ? q.where('agent_id', '=', filter.agentId)
        : q.where('deadline_at', '<', filter.deadlineBefore);
    const rows = await this.exec.all<Row<'access_requests'>>(q.orderBy('created_at').limit(limit).compile());
    return rows.map(toRequest);
  }

  async insertLease(l: LeaseRecord) {
    await this.exec.run(
      this.db
        .insertInto('leases')
        .values({
          id: l.id,
          request_id: l.requestId,
          agent_id: l.agentId,
          task_id: l.taskId,
          kind: l.kind,
          credential_id: l.credentialId,
          fingerprint: l.fingerprint,
          audience: l.audience,
          scope: JSON.stringify(l.scope),
          issued_at: l.issuedAt,
          expires_at: l.expiresAt,
          status: l.status,
          revoked_at: l.revokedAt,
          revoke_reason: l.revokeReason,
        })
        .compile(),
    );
  }

  async getLease(id: string) {
    const r = await this.one<'leases'>(this.db.selectFrom('leases').selectAll().where('id', '=', id));
    return r ? toLease(r) : null;
  }

  async getLeaseByCredentialId(credentialId: string) {
    const r = await this.one<'leases'>(
      this.db.selectFrom('leases').selectAll().where('credential_id', '=', credentialId),
    );
    return r ? toLease(r) : null;
  }

  async revokeLeases(selector: LeaseSelector, at: number, reason: string) {
    let q = this.db.selectFrom('leases').selectAll().where('status', '=', 'active');
    if ('leaseId' in selector) q = q.where('id', '=', selector.leaseId);
    else {
      q = q.where('agent_id', '=', selector.agentId);
      if ('taskId' in selector) q = q.where('task_id', '=', selector.taskId);
    }
    const candidates = (await this.exec.all<Row<'leases'>>(q.compile())).map(toLease);
    const revoked: LeaseRecord[] = [];
    for (const lease of candidates) {
      // Conditional per row: a lease is revoked once, by exactly one caller.
      const r = await this.exec.run(
        this.db
          .updateTable('leases')
          .set({ status: 'revoked', revoked_at: at, revoke_reason: reason })
          .where('id', '=', lease.id)
          .where('status', '=', 'active')
          .compile(),
      );
      if (r.changes === 1) revoked.push({ ...lease, status: 'revoked', revokedAt: at, revokeReason: reason });
    }
    return revoked;
  }

  async isTaskCompleted(agentId: string, taskId: string) {
    const r = await this.one<'tasks'>(
      this.db.selectFrom('tasks').selectAll().where('agent_id', '=', agentId).where('task_id', '=', taskId),
    );
    return r !== null;
  }

  async completeTask(agentId: string, taskId: string, at: number) {
    try {
      await this.exec.run(
        this.db
          .insertInto('tasks')
          .values({ agent_id: agentId, task_id: taskId, completed_at: at })
          .compile(),
      );
      return true;
    } catch (error) {
      if (error instanceof UniqueViolation) return false;
      throw error;
    }
  }

  async appendAudit(input: AuditEventInput, at: number): Promise<AuditEvent> {
    try {
      const head = await this.one<'audit_events'>(
        this.db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1),
      );
      const event = chainEvent(
        head ? { seq: num(head.seq), hash: head.hash } : null,
        input,
        this.ids.next('evt'),
        new Date(at).toISOString(),
      );
      await this.exec.run(
        this.db
          .insertInto('audit_events')
          .values({
            seq: event.seq,
            id: event.id,
            at: event.at,
            type: event.type,
            actor_type: event.actor.type,
            actor_id: event.actor.id,
            request_id: event.requestId,
            data: JSON.stringify(event.data),
            prev_hash: event.prevHash,
            hash: event.hash,
          })
          .compile(),
      );
      return event;
    } catch (error) {
      throw new CountersignError(
        'CS_AUDIT_WRITE_FAILED',
        'the audit event could not be written; nothing was done',
        {
          cause: error,
        },
      );
    }
  }
}
