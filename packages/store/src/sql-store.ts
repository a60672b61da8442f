/**
 * The store contract implemented once over Kysely-compiled queries; dialect adapters supply
 * an Executor. Invariants are constraints and single-row conditional updates.
 */
import {
  type AccessRequestRecord,
  type AgentRecord,
  type AuditEvent,
  type AuditEventInput,
  type ChallengeRecord,
  CountersignError,
  chainEvent,
  type EvidenceViewRecord,
  type InviteRecord,
  type LeaseFilter,
  type LeaseRecord,
  type LeaseSelector,
  type LeaseStatus,
  type OutboxRecord,
  type ReviewerCredentialRecord,
  type ReviewerRecord,
  type SealedSecretRecord,
  type SessionRecord,
  type ShadowDecisionRecord,
  type StoreTx,
  type TaskOutcome,
  type TaskRecord,
  type VoteRecord,
  type WorkloadIdentityBinding,
} from '@countersign/core';
import type { Kysely, Selectable } from 'kysely';
import { type Executor, UniqueViolation } from './executor.js';
import { failpoint } from './failpoint.js';
import { prepared } from './prepared.js';
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
    publicJwk: r.public_jwk === null ? null : JSON.parse(r.public_jwk),
    jwkThumbprint: r.jwk_thumbprint,
    createdAt: num(r.created_at),
    expiresAt: numOrNull(r.expires_at),
    lastSeenAt: numOrNull(r.last_seen_at),
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
    cnfJkt: r.cnf_jkt ?? null,
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
    deliveredAt: numOrNull(r.delivered_at),
    cnfJkt: r.cnf_jkt ?? null,
    issuer: r.issuer,
    // Leases from before these columns existed carry them in their scope only.
    action: r.action ?? '',
    resource: r.resource ?? '',
    revokeAttempts: num(r.revoke_attempts),
    nextRevokeAt: numOrNull(r.next_revoke_at),
    claimedUntil: numOrNull(r.claimed_until),
    lastRevokeError: r.last_revoke_error,
    revokeConfirmedAt: numOrNull(r.revoke_confirmed_at),
  };
}

const LIVE: readonly LeaseStatus[] = ['issuing', 'active'];

function toSealed(r: Row<'sealed_secrets'>): SealedSecretRecord {
  return {
    name: r.name,
    version: num(r.version),
    ciphertext: r.ciphertext,
    nonce: r.nonce,
    wrappedKey: r.wrapped_key,
    wrapNonce: r.wrap_nonce,
    keyId: r.key_id,
    fingerprint: r.fingerprint,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toVote(r: Row<'votes'>): VoteRecord {
  return {
    requestId: r.request_id,
    reviewerId: r.reviewer_id,
    verdict: r.verdict as VoteRecord['verdict'],
    assertionHash: r.assertion_hash,
    credentialId: r.credential_id,
    createdAt: num(r.created_at),
  };
}

function toReviewer(r: Row<'reviewers'>): ReviewerRecord {
  return {
    id: r.id,
    email: r.email,
    groups: JSON.parse(r.groups),
    status: r.status as ReviewerRecord['status'],
    webauthnUserId: r.webauthn_user_id,
    createdAt: num(r.created_at),
  };
}

function toCredential(r: Row<'reviewer_credentials'>): ReviewerCredentialRecord {
  return {
    id: r.id,
    reviewerId: r.reviewer_id,
    publicKey: r.public_key,
    counter: num(r.counter),
    transports: JSON.parse(r.transports),
    createdAt: num(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
  };
}

function toChallenge(r: Row<'challenges'>): ChallengeRecord {
  return {
    id: r.id,
    purpose: r.purpose as ChallengeRecord['purpose'],
    reviewerId: r.reviewer_id,
    requestId: r.request_id,
    verdict: r.verdict as ChallengeRecord['verdict'],
    nonce: r.nonce,
    challenge: r.challenge,
    expiresAt: num(r.expires_at),
    usedAt: numOrNull(r.used_at),
  };
}

/** Parses stored JSON; unparseable text becomes a marker that can never hash like the original. */
function parseStoredData(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? value
      : { $unparseable: text };
  } catch {
    return { $unparseable: text };
  }
}

export function toAuditEvent(r: Row<'audit_events'>): AuditEvent {
  return {
    seq: num(r.seq),
    id: r.id,
    at: r.at,
    type: r.type,
    actor: { type: r.actor_type as AuditEvent['actor']['type'], id: r.actor_id },
    requestId: r.request_id,
    // A tampered row must surface as a broken event the verifier can name, never as a crash.
    data: parseStoredData(r.data),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface IdSource {
  next(prefix: string): string;
}

/** StoreTx over one executor (a connection inside a transaction, or a read connection). */
export class SqlTx implements StoreTx {
  /**
   * The audit chain's head as of this transaction's last append, or undefined when it must be
   * read. Only an adapter that holds the database's write lock for the whole transaction may
   * keep it between appends, and it must call `forgetAuditHead()` whenever that stops being
   * true (a new transaction, a rollback). A stale head cannot fork the chain: `seq` is the
   * primary key, so the insert would fail and the unit with it (CS_AUDIT_WRITE_FAILED).
   */
  #auditHead: { seq: number; hash: string } | null | undefined;

  forgetAuditHead(): void {
    this.#auditHead = undefined;
  }

  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly exec: Executor,
    protected readonly ids: IdSource,
  ) {}

  protected async one<T extends keyof Database>(q: {
    compile(): import('kysely').CompiledQuery;
  }): Promise<Row<T> | null> {
    const rows = await this.exec.all<Row<T>>(q.compile());
    return rows[0] ?? null;
  }

  /** The first row of a compiled (usually prepared) query, or null. */
  protected async first<T extends keyof Database>(q: import('kysely').CompiledQuery): Promise<Row<T> | null> {
    const rows = await this.exec.all<Row<T>>(q);
    return rows[0] ?? null;
  }

  async getAgent(id: string) {
    const r = await this.first<'agents'>(
      prepared(this.db, 'getAgent', { id }, (p) =>
        this.db.selectFrom('agents').selectAll().where('id', '=', p.id),
      ),
    );
    return r ? toAgent(r) : null;
  }

  /** Every agent, by id, in one query (the Store's `listAgents`). */
  async listAgents(): Promise<AgentRecord[]> {
    const rows = await this.exec.all<Row<'agents'>>(
      this.db.selectFrom('agents').selectAll().orderBy('id').compile(),
    );
    return rows.map(toAgent);
  }

  /** Up to `limit` audit events after sequence number `after`, in chain order (the Store's `auditEvents`). */
  async auditEventsAfter(after: number, limit: number): Promise<AuditEvent[]> {
    const rows = await this.exec.all<Row<'audit_events'>>(
      this.db
        .selectFrom('audit_events')
        .selectAll()
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(limit)
        .compile(),
    );
    return rows.map(toAuditEvent);
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
            public_jwk: a.publicJwk === null ? null : JSON.stringify(a.publicJwk),
            jwk_thumbprint: a.jwkThumbprint,
            created_at: a.createdAt,
            expires_at: a.expiresAt,
            last_seen_at: a.lastSeenAt,
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

  async insertWorkloadIdentity(b: WorkloadIdentityBinding) {
    try {
      await this.exec.run(
        this.db
          .insertInto('workload_identities')
          .values({ issuer: b.issuer, subject: b.subject, agent_id: b.agentId, created_at: b.createdAt })
          .compile(),
      );
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw new CountersignError(
          'CS_IDENTITY_EXISTS',
          `the workload identity ${b.subject} of ${b.issuer} is already bound to an agent`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  async getAgentByWorkloadIdentity(issuer: string, subject: string) {
    const r = await this.one<'agents'>(
      this.db
        .selectFrom('workload_identities as w')
        .innerJoin('agents as a', 'a.id', 'w.agent_id')
        .selectAll('a')
        .where('w.issuer', '=', issuer)
        .where('w.subject', '=', subject),
    );
    return r ? toAgent(r) : null;
  }

  async listWorkloadIdentities(agentId: string) {
    const rows = await this.exec.all<Row<'workload_identities'>>(
      this.db
        .selectFrom('workload_identities')
        .selectAll()
        .where('agent_id', '=', agentId)
        .orderBy('issuer')
        .orderBy('subject')
        .compile(),
    );
    return rows.map((r) => ({
      issuer: r.issuer,
      subject: r.subject,
      agentId: r.agent_id,
      createdAt: num(r.created_at),
    }));
  }

  async touchAgent(id: string, at: number) {
    await this.exec.run(
      this.db
        .updateTable('agents')
        .set({ last_seen_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', at)]))
        .compile(),
    );
  }

  async lockAgent(id: string) {
    const rows = await this.exec.all<Row<'agents'>>(
      prepared(this.db, 'lockAgent', { id }, (p) =>
        this.db
          .updateTable('agents')
          .set((eb) => ({ status: eb.ref('status') }))
          .where('id', '=', p.id)
          .returningAll(),
      ),
    );
    return rows[0] ? toAgent(rows[0]) : null;
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
    // ON CONFLICT DO NOTHING, not a caught error: on PostgreSQL any error aborts the whole
    // transaction, and a replay must be a plain `false` the unit can act on.
    const r = await this.exec.run(
      prepared(this.db, 'consumeTokenId', { issuer, token_id: tokenId, expires_at: expiresAt }, (p) =>
        this.db
          .insertInto('token_ids')
          .values(p)
          .onConflict((oc) => oc.columns(['issuer', 'token_id']).doNothing()),
      ),
    );
    failpoint('unit.after-assertion');
    return r.changes === 1;
  }

  async pruneTokenIds(before: number) {
    const r = await this.exec.run(this.db.deleteFrom('token_ids').where('expires_at', '<', before).compile());
    return r.changes;
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
      const row = {
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
        cnf_jkt: x.cnfJkt,
      };
      await this.exec.run(
        prepared(this.db, 'insertRequest', row, (p) => this.db.insertInto('access_requests').values(p)),
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

  async lockRequest(id: string) {
    const rows = await this.exec.all<Row<'access_requests'>>(
      this.db
        .updateTable('access_requests')
        .set((eb) => ({ status: eb.ref('status') }))
        .where('id', '=', id)
        .returningAll()
        .compile(),
    );
    return rows[0] ? toRequest(rows[0]) : null;
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

  async listRequestsSince(since: number, limit: number) {
    const rows = await this.exec.all<Row<'access_requests'>>(
      this.db
        .selectFrom('access_requests')
        .selectAll()
        .where('created_at', '>=', since)
        .orderBy('created_at')
        .orderBy('id')
        .limit(limit)
        .compile(),
    );
    return rows.map(toRequest);
  }

  async listVotesSince(since: number, limit: number) {
    const rows = await this.exec.all<Row<'votes'>>(
      this.db
        .selectFrom('votes')
        .selectAll()
        .where('created_at', '>=', since)
        .orderBy('created_at')
        .orderBy('request_id')
        .orderBy('reviewer_id')
        .limit(limit)
        .compile(),
    );
    return rows.map(toVote);
  }

  async recordEvidenceView(v: EvidenceViewRecord) {
    const r = await this.exec.run(
      this.db
        .insertInto('evidence_views')
        .values({ request_id: v.requestId, reviewer_id: v.reviewerId, viewed_at: v.viewedAt })
        .onConflict((oc) => oc.columns(['request_id', 'reviewer_id']).doNothing())
        .compile(),
    );
    return r.changes === 1;
  }

  async listEvidenceViews(since: number, limit: number) {
    const rows = await this.exec.all<Row<'evidence_views'>>(
      this.db
        .selectFrom('evidence_views')
        .selectAll()
        .where('viewed_at', '>=', since)
        .orderBy('viewed_at')
        .orderBy('request_id')
        .orderBy('reviewer_id')
        .limit(limit)
        .compile(),
    );
    return rows.map(
      (r): EvidenceViewRecord => ({
        requestId: r.request_id,
        reviewerId: r.reviewer_id,
        viewedAt: num(r.viewed_at),
      }),
    );
  }

  async insertShadowDecision(d: ShadowDecisionRecord) {
    const r = await this.exec.run(
      this.db
        .insertInto('shadow_decisions')
        .values({
          request_id: d.requestId,
          agent_id: d.agentId,
          action: d.action,
          resource: d.resource,
          active_version: d.activeVersion,
          active_outcome: d.activeOutcome,
          active_group: d.activeGroup,
          candidate_version: d.candidateVersion,
          candidate_outcome: d.candidateOutcome,
          candidate_group: d.candidateGroup,
          candidate_policies: JSON.stringify(d.candidatePolicies),
          created_at: d.createdAt,
        })
        .onConflict((oc) => oc.column('request_id').doNothing())
        .compile(),
    );
    return r.changes === 1;
  }

  async listShadowDecisions(since: number, limit: number) {
    const rows = await this.exec.all<Row<'shadow_decisions'>>(
      this.db
        .selectFrom('shadow_decisions')
        .selectAll()
        .where('created_at', '>=', since)
        .orderBy('created_at', 'desc')
        .orderBy('request_id', 'desc')
        .limit(limit)
        .compile(),
    );
    return rows.map(
      (r): ShadowDecisionRecord => ({
        requestId: r.request_id,
        agentId: r.agent_id,
        action: r.action,
        resource: r.resource,
        activeVersion: r.active_version,
        activeOutcome: r.active_outcome as ShadowDecisionRecord['activeOutcome'],
        activeGroup: r.active_group,
        candidateVersion: r.candidate_version,
        candidateOutcome: r.candidate_outcome as ShadowDecisionRecord['candidateOutcome'],
        candidateGroup: r.candidate_group,
        candidatePolicies: JSON.parse(r.candidate_policies) as string[],
        createdAt: num(r.created_at),
      }),
    );
  }

  async countPendingRequests(agentId: string, now: number) {
    const rows = await this.exec.all<{ n: number | string }>(
      this.db
        .selectFrom('access_requests')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('agent_id', '=', agentId)
        .where('status', '=', 'pending')
        .where('deadline_at', '>', now)
        .compile(),
    );
    return num(rows[0]?.n ?? 0);
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
    const row = {
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
      delivered_at: l.deliveredAt,
      cnf_jkt: l.cnfJkt,
      issuer: l.issuer,
      action: l.action,
      resource: l.resource,
      revoke_attempts: l.revokeAttempts,
      next_revoke_at: l.nextRevokeAt,
      claimed_until: l.claimedUntil,
      claimed_by: null,
      last_revoke_error: l.lastRevokeError,
      revoke_confirmed_at: l.revokeConfirmedAt,
    };
    await this.exec.run(prepared(this.db, 'insertLease', row, (p) => this.db.insertInto('leases').values(p)));
    failpoint('unit.after-lease-insert');
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

  async revokeLeases(
    selector: LeaseSelector,
    at: number,
    reason: string,
    downstream: readonly string[] = [],
  ) {
    let q = this.db.selectFrom('leases').selectAll().where('status', 'in', LIVE);
    if ('leaseId' in selector) q = q.where('id', '=', selector.leaseId);
    else {
      q = q.where('agent_id', '=', selector.agentId);
      if ('taskId' in selector) q = q.where('task_id', '=', selector.taskId);
    }
    const candidates = (await this.exec.all<Row<'leases'>>(q.compile())).map(toLease);
    const revoked: LeaseRecord[] = [];
    for (const lease of candidates) {
      // An intent nobody claimed for minting has nothing downstream to revoke.
      const minted = !(lease.status === 'issuing' && lease.deliveredAt === null);
      const to = minted && downstream.includes(lease.issuer) ? 'revoke_pending' : 'revoked';
      // Conditional per row: a lease is ended once, by exactly one caller.
      if (await this.endLease(lease.id, lease.status, to, at, reason)) {
        revoked.push({
          ...lease,
          status: to,
          revokedAt: at,
          revokeReason: reason,
          nextRevokeAt: to === 'revoke_pending' ? at : null,
        });
      }
    }
    return revoked;
  }

  async endLease(
    id: string,
    from: LeaseStatus,
    to: 'revoke_pending' | 'revoked',
    at: number,
    reason: string,
  ) {
    const r = await this.exec.run(
      this.db
        .updateTable('leases')
        .set({
          status: to,
          revoked_at: at,
          revoke_reason: reason,
          next_revoke_at: to === 'revoke_pending' ? at : null,
        })
        .where('id', '=', id)
        .where('status', '=', from)
        .compile(),
    );
    return r.changes === 1;
  }

  async listLeases(filter: LeaseFilter, limit: number) {
    let q = this.db.selectFrom('leases').selectAll();
    if (filter.agentId !== undefined) q = q.where('agent_id', '=', filter.agentId);
    if (filter.taskId !== undefined) q = q.where('task_id', '=', filter.taskId);
    if (filter.statuses !== undefined) {
      if (filter.statuses.length === 0) return [];
      q = q.where('status', 'in', filter.statuses);
    }
    const rows = await this.exec.all<Row<'leases'>>(
      q.orderBy('issued_at', 'desc').orderBy('id', 'desc').limit(limit).compile(),
    );
    return rows.map(toLease);
  }

  async listExpiredLeases(issuers: readonly string[], now: number, limit: number) {
    if (issuers.length === 0) return [];
    const rows = await this.exec.all<Row<'leases'>>(
      this.db
        .selectFrom('leases')
        .selectAll()
        .where('status', 'in', LIVE)
        .where('expires_at', '<=', now)
        .where('issuer', 'in', issuers)
        .orderBy('expires_at')
        .limit(limit)
        .compile(),
    );
    return rows.map(toLease);
  }

  async listStaleIntents(claimedBefore: number, limit: number) {
    const rows = await this.exec.all<Row<'leases'>>(
      this.db
        .selectFrom('leases')
        .selectAll()
        .where('status', '=', 'issuing')
        .where('delivered_at', 'is not', null)
        .where('delivered_at', '<', claimedBefore)
        .orderBy('delivered_at')
        .limit(limit)
        .compile(),
    );
    return rows.map(toLease);
  }

  async listDueRevocations(now: number, limit: number) {
    const rows = await this.exec.all<Row<'leases'>>(
      this.db
        .selectFrom('leases')
        .selectAll()
        .where('status', '=', 'revoke_pending')
        .where('next_revoke_at', '<=', now)
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<=', now)]))
        .orderBy('next_revoke_at')
        .limit(limit)
        .compile(),
    );
    return rows.map(toLease);
  }

  async countLeases(filter: { status: LeaseStatus; failing?: boolean }) {
    let q = this.db
      .selectFrom('leases')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', filter.status);
    if (filter.failing) q = q.where('revoke_attempts', '>', 0);
    const rows = await this.exec.all<{ n: number | string }>(q.compile());
    return num(rows[0]?.n ?? 0);
  }

  async activateLease(id: string, fingerprint: string, _at: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('leases')
        .set({ status: 'active', fingerprint })
        .where('id', '=', id)
        .where('status', '=', 'issuing')
        .compile(),
    );
    return r.changes === 1;
  }

  async claimRevocation(id: string, by: string, now: number, until: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('leases')
        .set({ claimed_until: until, claimed_by: by })
        .where('id', '=', id)
        .where('status', '=', 'revoke_pending')
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<=', now)]))
        .compile(),
    );
    return r.changes === 1;
  }

  async confirmRevocation(id: string, at: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('leases')
        .set({
          status: 'revoked',
          revoke_confirmed_at: at,
          next_revoke_at: null,
          claimed_until: null,
          claimed_by: null,
        })
        .where('id', '=', id)
        .where('status', '=', 'revoke_pending')
        .compile(),
    );
    return r.changes === 1;
  }

  async failRevocation(id: string, by: string, attempts: number, nextAt: number, error: string) {
    const r = await this.exec.run(
      this.db
        .updateTable('leases')
        .set({
          revoke_attempts: attempts,
          next_revoke_at: nextAt,
          last_revoke_error: error.slice(0, 200),
          claimed_until: null,
          claimed_by: null,
        })
        .where('id', '=', id)
        .where('status', '=', 'revoke_pending')
        .where('claimed_by', '=', by)
        .compile(),
    );
    return r.changes === 1;
  }

  async isTaskCompleted(agentId: string, taskId: string) {
    const r = await this.first<'tasks'>(
      prepared(this.db, 'isTaskCompleted', { agentId, taskId }, (p) =>
        this.db
          .selectFrom('tasks')
          .selectAll()
          .where('agent_id', '=', p.agentId)
          .where('task_id', '=', p.taskId),
      ),
    );
    return r !== null;
  }

  async completeTask(
    agentId: string,
    taskId: string,
    at: number,
    outcome: TaskOutcome = 'completed',
    reason: string | null = null,
  ) {
    // As consumeTokenId: a second completion is `false`, and the unit goes on.
    const r = await this.exec.run(
      this.db
        .insertInto('tasks')
        .values({ agent_id: agentId, task_id: taskId, completed_at: at, outcome, reason })
        .onConflict((oc) => oc.columns(['agent_id', 'task_id']).doNothing())
        .compile(),
    );
    return r.changes === 1;
  }

  async getTask(agentId: string, taskId: string): Promise<TaskRecord | null> {
    const ended = await this.one<'tasks'>(
      this.db.selectFrom('tasks').selectAll().where('agent_id', '=', agentId).where('task_id', '=', taskId),
    );
    const beat = await this.one<'task_heartbeats'>(
      this.db
        .selectFrom('task_heartbeats')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('task_id', '=', taskId),
    );
    if (!ended && !beat) return null;
    return {
      agentId,
      taskId,
      outcome: ended ? (ended.outcome as TaskOutcome) : null,
      endedAt: ended ? num(ended.completed_at) : null,
      reason: ended?.reason ?? null,
      lastHeartbeatAt: beat ? num(beat.last_at) : null,
    };
  }

  async recordHeartbeat(agentId: string, taskId: string, at: number) {
    await this.exec.run(
      this.db
        .insertInto('task_heartbeats')
        .values({ agent_id: agentId, task_id: taskId, first_at: at, last_at: at })
        .onConflict((oc) => oc.columns(['agent_id', 'task_id']).doUpdateSet({ last_at: at }))
        .compile(),
    );
  }

  async listIdleTasks(before: number, limit: number) {
    const rows = await this.exec.all<{ agent_id: string; task_id: string; last_at: number | string }>(
      this.db
        .selectFrom('task_heartbeats as h')
        .leftJoin('tasks as t', (join) =>
          join.onRef('t.agent_id', '=', 'h.agent_id').onRef('t.task_id', '=', 'h.task_id'),
        )
        .select(['h.agent_id', 'h.task_id', 'h.last_at'])
        .where('h.last_at', '<', before)
        .where('t.task_id', 'is', null)
        .orderBy('h.last_at')
        .limit(limit)
        .compile(),
    );
    return rows.map((r) => ({ agentId: r.agent_id, taskId: r.task_id, lastHeartbeatAt: num(r.last_at) }));
  }

  async listAgentRequests(agentId: string, status: AccessRequestRecord['status'], limit: number) {
    const rows = await this.exec.all<Row<'access_requests'>>(
      this.db
        .selectFrom('access_requests')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('status', '=', status)
        .orderBy('created_at', 'desc')
        .limit(limit)
        .compile(),
    );
    return rows.map(toRequest);
  }

  async listReviewRequests(
    filter: { pending: boolean; status?: AccessRequestRecord['status']; agentId?: string },
    limit: number,
  ) {
    // Only reviews carry a deadline.
    let q = this.db.selectFrom('access_requests').selectAll().where('deadline_at', 'is not', null);
    q = filter.pending ? q.where('status', '=', 'pending') : q.where('status', '!=', 'pending');
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.agentId) q = q.where('agent_id', '=', filter.agentId);
    const rows = await this.exec.all<Row<'access_requests'>>(
      q.orderBy('created_at', 'desc').limit(limit).compile(),
    );
    return rows.map(toRequest);
  }

  async markLeaseDelivered(leaseId: string, at: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('leases')
        .set({ delivered_at: at })
        .where('id', '=', leaseId)
        .where('delivered_at', 'is', null)
        .where('status', 'in', LIVE)
        .compile(),
    );
    return r.changes === 1;
  }

  async insertReviewer(x: ReviewerRecord) {
    try {
      await this.exec.run(
        this.db
          .insertInto('reviewers')
          .values({
            id: x.id,
            email: x.email,
            groups: JSON.stringify(x.groups),
            status: x.status,
            webauthn_user_id: x.webauthnUserId,
            created_at: x.createdAt,
          })
          .compile(),
      );
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw new CountersignError('CS_REVIEWER_EXISTS', `a reviewer ${x.email} already exists`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async getReviewer(id: string) {
    const r = await this.one<'reviewers'>(this.db.selectFrom('reviewers').selectAll().where('id', '=', id));
    return r ? toReviewer(r) : null;
  }

  async getReviewerByEmail(email: string) {
    const r = await this.one<'reviewers'>(
      this.db.selectFrom('reviewers').selectAll().where('email', '=', email),
    );
    return r ? toReviewer(r) : null;
  }

  async listReviewers() {
    const rows = await this.exec.all<Row<'reviewers'>>(
      this.db.selectFrom('reviewers').selectAll().orderBy('email').compile(),
    );
    return rows.map(toReviewer);
  }

  async setReviewerStatus(id: string, from: ReviewerRecord['status'], to: ReviewerRecord['status']) {
    const r = await this.exec.run(
      this.db
        .updateTable('reviewers')
        .set({ status: to })
        .where('id', '=', id)
        .where('status', '=', from)
        .compile(),
    );
    return r.changes === 1;
  }

  async insertReviewerCredential(c: ReviewerCredentialRecord) {
    try {
      await this.exec.run(
        this.db
          .insertInto('reviewer_credentials')
          .values({
            id: c.id,
            reviewer_id: c.reviewerId,
            public_key: c.publicKey,
            counter: c.counter,
            transports: JSON.stringify(c.transports),
            created_at: c.createdAt,
            last_used_at: c.lastUsedAt,
          })
          .compile(),
      );
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw new CountersignError('CS_REVIEWER_EXISTS', 'this passkey is already registered', {
          cause: error,
        });
      }
      throw error;
    }
  }

  async getReviewerCredential(id: string) {
    const r = await this.one<'reviewer_credentials'>(
      this.db.selectFrom('reviewer_credentials').selectAll().where('id', '=', id),
    );
    return r ? toCredential(r) : null;
  }

  async listReviewerCredentials(reviewerId: string) {
    const rows = await this.exec.all<Row<'reviewer_credentials'>>(
      this.db
        .selectFrom('reviewer_credentials')
        .selectAll()
        .where('reviewer_id', '=', reviewerId)
        .orderBy('created_at')
        .compile(),
    );
    return rows.map(toCredential);
  }

  async updateCredentialCounter(id: string, to: number, at: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('reviewer_credentials')
        .set({ counter: to, last_used_at: at })
        .where('id', '=', id)
        // Forward only; authenticators without a counter report 0 every time (WebAuthn §6.1.1).
        .where((eb) => (to === 0 ? eb('counter', '=', 0) : eb('counter', '<', to)))
        .compile(),
    );
    return r.changes === 1;
  }

  async insertInvite(i: InviteRecord) {
    await this.exec.run(
      this.db
        .insertInto('invites')
        .values({
          token_hash: i.tokenHash,
          email: i.email,
          groups: JSON.stringify(i.groups),
          expires_at: i.expiresAt,
          used_at: i.usedAt,
          created_at: i.createdAt,
        })
        .compile(),
    );
  }

  async getInvite(tokenHash: string) {
    const r = await this.one<'invites'>(
      this.db.selectFrom('invites').selectAll().where('token_hash', '=', tokenHash),
    );
    return r
      ? {
          tokenHash: r.token_hash,
          email: r.email,
          groups: JSON.parse(r.groups) as string[],
          expiresAt: num(r.expires_at),
          usedAt: numOrNull(r.used_at),
          createdAt: num(r.created_at),
        }
      : null;
  }

  async consumeInvite(tokenHash: string, at: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('invites')
        .set({ used_at: at })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', at)
        .compile(),
    );
    return r.changes === 1;
  }

  async insertSession(x: SessionRecord) {
    await this.exec.run(
      this.db
        .insertInto('sessions')
        .values({
          token_hash: x.tokenHash,
          reviewer_id: x.reviewerId,
          created_at: x.createdAt,
          last_seen_at: x.lastSeenAt,
          expires_at: x.expiresAt,
          revoked_at: x.revokedAt,
        })
        .compile(),
    );
  }

  async getSession(tokenHash: string) {
    const r = await this.one<'sessions'>(
      this.db.selectFrom('sessions').selectAll().where('token_hash', '=', tokenHash),
    );
    return r
      ? {
          tokenHash: r.token_hash,
          reviewerId: r.reviewer_id,
          createdAt: num(r.created_at),
          lastSeenAt: num(r.last_seen_at),
          expiresAt: num(r.expires_at),
          revokedAt: numOrNull(r.revoked_at),
        }
      : null;
  }

  async touchSession(tokenHash: string, at: number) {
    await this.exec.run(
      this.db.updateTable('sessions').set({ last_seen_at: at }).where('token_hash', '=', tokenHash).compile(),
    );
  }

  async revokeSessions(selector: { tokenHash: string } | { reviewerId: string }, at: number) {
    let q = this.db.updateTable('sessions').set({ revoked_at: at }).where('revoked_at', 'is', null);
    q =
      'tokenHash' in selector
        ? q.where('token_hash', '=', selector.tokenHash)
        : q.where('reviewer_id', '=', selector.reviewerId);
    return (await this.exec.run(q.compile())).changes;
  }

  async insertChallenge(c: ChallengeRecord) {
    await this.exec.run(
      this.db
        .insertInto('challenges')
        .values({
          id: c.id,
          purpose: c.purpose,
          reviewer_id: c.reviewerId,
          request_id: c.requestId,
          verdict: c.verdict,
          nonce: c.nonce,
          challenge: c.challenge,
          expires_at: c.expiresAt,
          used_at: c.usedAt,
        })
        .compile(),
    );
  }

  async getChallenge(id: string) {
    const r = await this.one<'challenges'>(this.db.selectFrom('challenges').selectAll().where('id', '=', id));
    return r ? toChallenge(r) : null;
  }

  async consumeChallenge(id: string, at: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('challenges')
        .set({ used_at: at })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', at)
        .compile(),
    );
    return r.changes === 1;
  }

  async insertVote(v: VoteRecord) {
    try {
      await this.exec.run(
        this.db
          .insertInto('votes')
          .values({
            request_id: v.requestId,
            reviewer_id: v.reviewerId,
            verdict: v.verdict,
            assertion_hash: v.assertionHash,
            credential_id: v.credentialId,
            created_at: v.createdAt,
          })
          .compile(),
      );
    } catch (error) {
      if (error instanceof UniqueViolation) {
        throw new CountersignError('CS_ALREADY_VOTED', 'you already voted on this request', { cause: error });
      }
      throw error;
    }
  }

  async listVotes(requestId: string) {
    const rows = await this.exec.all<Row<'votes'>>(
      this.db
        .selectFrom('votes')
        .selectAll()
        .where('request_id', '=', requestId)
        .orderBy('created_at')
        .compile(),
    );
    return rows.map(toVote);
  }

  async insertReceipt(requestId: string, jws: string, at: number) {
    await this.exec.run(
      this.db.insertInto('receipts').values({ request_id: requestId, jws, created_at: at }).compile(),
    );
  }

  async getReceipt(requestId: string) {
    const r = await this.one<'receipts'>(
      this.db.selectFrom('receipts').selectAll().where('request_id', '=', requestId),
    );
    return r ? r.jws : null;
  }

  async insertOutbox(o: OutboxRecord) {
    await this.exec.run(
      this.db
        .insertInto('outbox')
        .values({
          id: o.id,
          subscriber: o.subscriber,
          type: o.type,
          request_id: o.requestId,
          payload: JSON.stringify(o.payload),
          attempts: o.attempts,
          next_attempt_at: o.nextAttemptAt,
          delivered_at: o.deliveredAt,
          failed_at: o.failedAt,
          last_error: o.lastError,
          created_at: o.createdAt,
        })
        .compile(),
    );
  }

  async listDueOutbox(now: number, limit: number) {
    const rows = await this.exec.all<Row<'outbox'>>(
      this.db
        .selectFrom('outbox')
        .selectAll()
        .where('delivered_at', 'is', null)
        .where('failed_at', 'is', null)
        .where('next_attempt_at', '<=', now)
        .orderBy('created_at')
        .limit(limit)
        .compile(),
    );
    return rows.map(
      (r): OutboxRecord => ({
        id: r.id,
        subscriber: r.subscriber,
        type: r.type,
        requestId: r.request_id,
        payload: JSON.parse(r.payload),
        attempts: num(r.attempts),
        nextAttemptAt: num(r.next_attempt_at),
        deliveredAt: numOrNull(r.delivered_at),
        failedAt: numOrNull(r.failed_at),
        lastError: r.last_error,
        createdAt: num(r.created_at),
      }),
    );
  }

  async markOutboxDelivered(id: string, at: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('outbox')
        .set({ delivered_at: at })
        .where('id', '=', id)
        .where('delivered_at', 'is', null)
        .compile(),
    );
    return r.changes === 1;
  }

  async claimOutbox(id: string, expectedNextAttemptAt: number, until: number) {
    const r = await this.exec.run(
      this.db
        .updateTable('outbox')
        .set({ next_attempt_at: until })
        .where('id', '=', id)
        .where('next_attempt_at', '=', expectedNextAttemptAt)
        .where('delivered_at', 'is', null)
        .where('failed_at', 'is', null)
        .compile(),
    );
    return r.changes === 1;
  }

  async auditHeadSeq() {
    const rows = await this.exec.all<{ seq: number | string | null }>(
      this.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .compile(),
    );
    return numOrNull(rows[0]?.seq) ?? 0;
  }

  async listRequestChanges(afterSeq: number, upToSeq: number, types: readonly string[], limit: number) {
    if (types.length === 0 || upToSeq <= afterSeq) return [];
    const rows = await this.exec.all<{ seq: number | string; request_id: string }>(
      this.db
        .selectFrom('audit_events')
        .select(['seq', 'request_id'])
        .where('seq', '>', afterSeq)
        .where('seq', '<=', upToSeq)
        .where('type', 'in', [...types])
        .where('request_id', 'is not', null)
        .orderBy('seq')
        .limit(limit)
        .compile(),
    );
    return rows.map((r) => ({ seq: num(r.seq), requestId: r.request_id }));
  }

  async markOutboxAttempt(
    id: string,
    attempts: number,
    nextAttemptAt: number,
    error: string,
    failedAt: number | null,
  ) {
    await this.exec.run(
      this.db
        .updateTable('outbox')
        .set({
          attempts,
          next_attempt_at: nextAttemptAt,
          last_error: error.slice(0, 500),
          failed_at: failedAt,
        })
        .where('id', '=', id)
        .compile(),
    );
  }

  async putSealedSecret(x: SealedSecretRecord, expectedVersion: number | null) {
    const values = {
      name: x.name,
      version: x.version,
      ciphertext: x.ciphertext,
      nonce: x.nonce,
      wrapped_key: x.wrappedKey,
      wrap_nonce: x.wrapNonce,
      key_id: x.keyId,
      fingerprint: x.fingerprint,
      created_at: x.createdAt,
      updated_at: x.updatedAt,
    };
    if (expectedVersion === null) {
      // ON CONFLICT DO NOTHING, not a caught error: on PostgreSQL an error aborts the unit.
      const r = await this.exec.run(
        this.db
          .insertInto('sealed_secrets')
          .values(values)
          .onConflict((oc) => oc.column('name').doNothing())
          .compile(),
      );
      return r.changes === 1;
    }
    const { name: _n, created_at: _c, ...changes } = values;
    const r = await this.exec.run(
      this.db
        .updateTable('sealed_secrets')
        .set(changes)
        .where('name', '=', x.name)
        .where('version', '=', expectedVersion)
        .compile(),
    );
    return r.changes === 1;
  }

  async getSealedSecret(name: string) {
    const r = await this.one<'sealed_secrets'>(
      this.db.selectFrom('sealed_secrets').selectAll().where('name', '=', name),
    );
    return r ? toSealed(r) : null;
  }

  async listSealedSecrets() {
    const rows = await this.exec.all<Row<'sealed_secrets'>>(
      this.db.selectFrom('sealed_secrets').selectAll().orderBy('name').compile(),
    );
    return rows.map(toSealed);
  }

  async rewrapSealedSecret(
    name: string,
    version: number,
    fromKeyId: string,
    wrapped: { keyId: string; wrappedKey: string; wrapNonce: string },
    at: number,
  ) {
    const r = await this.exec.run(
      this.db
        .updateTable('sealed_secrets')
        .set({
          key_id: wrapped.keyId,
          wrapped_key: wrapped.wrappedKey,
          wrap_nonce: wrapped.wrapNonce,
          updated_at: at,
        })
        .where('name', '=', name)
        .where('version', '=', version)
        .where('key_id', '=', fromKeyId)
        .compile(),
    );
    return r.changes === 1;
  }

  async reserveKeyUse(keyId: string, uses: number, cap: number, at: number) {
    if (!Number.isInteger(uses) || uses < 0) throw new TypeError('uses must be a non-negative integer');
    await this.exec.run(
      this.db
        .insertInto('master_keys')
        .values({ key_id: keyId, wraps: 0, created_at: at })
        .onConflict((oc) => oc.column('key_id').doNothing())
        .compile(),
    );
    const r = await this.exec.run(
      this.db
        .updateTable('master_keys')
        .set((eb) => ({ wraps: eb('wraps', '+', uses) }))
        .where('key_id', '=', keyId)
        .where('wraps', '<=', cap - uses)
        .compile(),
    );
    return r.changes === 1;
  }

  async appendAudit(input: AuditEventInput, at: number): Promise<void> {
    try {
      await this.writeAuditEvents(await this.readAuditHead(), [{ input, at }]);
    } catch (error) {
      throw auditWriteFailed(error);
    }
    // Events about a request only: start-up and background events never reach it.
    if (input.requestId) failpoint('unit.after-audit-append');
  }

  /**
   * The newest event of the chain as this connection sees it now, or as this transaction's
   * last append left it when the adapter holds the chain's lock throughout (see #auditHead).
   */
  protected async readAuditHead(): Promise<{ seq: number; hash: string } | null> {
    if (this.#auditHead !== undefined) return this.#auditHead;
    const head = await this.first<'audit_events'>(
      prepared(this.db, 'auditHead', {}, () =>
        this.db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1),
      ),
    );
    return head ? { seq: num(head.seq), hash: head.hash } : null;
  }

  /** Chains `items` onto `head` and inserts them with one statement; returns the events. */
  protected async writeAuditEvents(
    head: { seq: number; hash: string } | null,
    items: ReadonlyArray<{ input: AuditEventInput; at: number }>,
  ): Promise<AuditEvent[]> {
    // Forgotten until the insert succeeds: a failed append must not leave a head behind.
    this.#auditHead = undefined;
    const events: AuditEvent[] = [];
    let prev = head;
    for (const { input, at } of items) {
      const event = chainEvent(prev, input, this.ids.next('evt'), new Date(at).toISOString());
      events.push(event);
      prev = { seq: event.seq, hash: event.hash };
    }
    if (events.length === 0) return events;
    const rows = events.map((event) => ({
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
    }));
    // One event per append is the common case: its shape is prepared once.
    const [only] = rows;
    await this.exec.run(
      rows.length === 1 && only
        ? prepared(this.db, 'insertAuditEvent', only, (p) => this.db.insertInto('audit_events').values(p))
        : this.db.insertInto('audit_events').values(rows).compile(),
    );
    const last = events[events.length - 1]!;
    this.#auditHead = { seq: last.seq, hash: last.hash };
    return events;
  }
}

export function auditWriteFailed(error: unknown): CountersignError {
  if (error instanceof CountersignError && error.code === 'CS_AUDIT_WRITE_FAILED') return error;
  return new CountersignError(
    'CS_AUDIT_WRITE_FAILED',
    'the audit event could not be written; nothing was done',
    {
      cause: error,
    },
  );
}
