/**
 * The store port. One contract, several adapters (SQLite now, PostgreSQL next), one contract
 * test suite for all. Invariants live here as constraints and compare-and-set updates, never
 * as read-then-write in the caller.
 */
import type { AuditEvent, AuditEventInput } from './audit.js';
import type {
  AccessRequestRecord,
  AgentRecord,
  ChallengeRecord,
  EvidenceViewRecord,
  InviteRecord,
  LeaseRecord,
  LeaseStatus,
  OutboxRecord,
  ReviewerCredentialRecord,
  ReviewerRecord,
  SealedSecretRecord,
  SessionRecord,
  ShadowDecisionRecord,
  TaskOutcome,
  TaskRecord,
  VoteRecord,
  WorkloadIdentityBinding,
} from './records.js';
import type { RequestStatus } from './types.js';
import type { StoreUnitArgs, StoreUnitName, StoreUnitResult } from './units.js';

export type LeaseSelector =
  | { readonly leaseId: string }
  | { readonly agentId: string; readonly taskId: string }
  | { readonly agentId: string };

export interface LeaseFilter {
  readonly agentId?: string;
  readonly taskId?: string;
  readonly statuses?: readonly LeaseStatus[];
}

/** Operations inside one atomic unit of work. */
export interface StoreTx {
  getAgent(id: string): Promise<AgentRecord | null>;
  getAgentByThumbprint(thumbprint: string): Promise<AgentRecord | null>;
  /** Fails with CS_AGENT_EXISTS when the id or the key is already registered. */
  insertAgent(agent: AgentRecord): Promise<void>;
  /** Fails with CS_IDENTITY_EXISTS when the issuer and subject are bound to an agent already. */
  insertWorkloadIdentity(binding: WorkloadIdentityBinding): Promise<void>;
  /** The agent an issuer's subject is bound to, with the binding, or null. */
  getAgentByWorkloadIdentity(issuer: string, subject: string): Promise<AgentRecord | null>;
  listWorkloadIdentities(agentId: string): Promise<WorkloadIdentityBinding[]>;
  /** Moves last-seen forward only (never back). */
  touchAgent(id: string, at: number): Promise<void>;

  /**
   * Takes the agent's row for the rest of the unit and returns it as committed now (a no-op
   * update). Units that open the agent's requests, issue or revoke its leases or complete its
   * tasks take it first, so they run one after another for one agent: a lease can never slip
   * past a task completion or a suspension (THREATS.md H6, INV-5), at any isolation level.
   * Lock order: agent, then request, then the rest.
   */
  lockAgent(id: string): Promise<AgentRecord | null>;
  /** Compare-and-set: true when the status changed. */
  setAgentStatus(id: string, from: AgentRecord['status'], to: AgentRecord['status']): Promise<boolean>;

  /** Records a one-time token id; false when it was seen before (a replay). */
  consumeTokenId(issuer: string, tokenId: string, expiresAt: number): Promise<boolean>;
  /** Forgets one-time token ids that expired before `before` (they can no longer verify); returns how many. */
  pruneTokenIds(before: number): Promise<number>;

  getRequest(id: string): Promise<AccessRequestRecord | null>;
  findRequestByIdempotencyKey(agentId: string, key: string): Promise<AccessRequestRecord | null>;
  insertRequest(record: AccessRequestRecord): Promise<void>;
  /**
   * Takes the request's row for the rest of the unit and returns it as committed now: votes
   * on one request run one after another, so a tally always sees every earlier vote (H6).
   */
  lockRequest(id: string): Promise<AccessRequestRecord | null>;
  /** Compare-and-set from `pending`; true for exactly one caller. */
  finishPendingRequest(
    id: string,
    to: Exclude<RequestStatus, 'pending'>,
    at: number,
    leaseId: string | null,
  ): Promise<boolean>;
  /** Requests created at or after `since`, oldest first (backtests, analytics, suggestions). */
  listRequestsSince(since: number, limit: number): Promise<AccessRequestRecord[]>;
  /** Votes cast at or after `since`, oldest first (reviewer-load analytics). */
  listVotesSince(since: number, limit: number): Promise<VoteRecord[]>;
  /** Records a reviewer's first look at a review's evidence; false when already recorded. */
  recordEvidenceView(view: EvidenceViewRecord): Promise<boolean>;
  /** Evidence views at or after `since`, oldest first. */
  listEvidenceViews(since: number, limit: number): Promise<EvidenceViewRecord[]>;
  /** Records where a candidate policy set decided otherwise; false when the request already has one. */
  insertShadowDecision(record: ShadowDecisionRecord): Promise<boolean>;
  /** Shadow differences at or after `since`, newest first. */
  listShadowDecisions(since: number, limit: number): Promise<ShadowDecisionRecord[]>;
  /** An agent's pending reviews whose deadline is after `now` (the per-agent cap, THREATS.md E1). */
  countPendingRequests(agentId: string, now: number): Promise<number>;
  /** Pending requests of an agent (for suspension) or past their deadline (for the reaper). */
  listPendingRequests(
    filter: { agentId: string } | { deadlineBefore: number },
    limit: number,
  ): Promise<AccessRequestRecord[]>;

  insertLease(lease: LeaseRecord): Promise<void>;
  getLease(id: string): Promise<LeaseRecord | null>;
  getLeaseByCredentialId(credentialId: string): Promise<LeaseRecord | null>;
  /**
   * Ends every live (`issuing` or `active`) lease matching the selector, each by its own
   * compare-and-set, and returns those it changed with their new status. A lease of an issuer
   * named in `downstream` goes to `revoke_pending` (due at once) when something of it may
   * exist downstream; every other lease goes straight to `revoked`.
   */
  revokeLeases(
    selector: LeaseSelector,
    at: number,
    reason: string,
    downstream?: readonly string[],
  ): Promise<LeaseRecord[]>;
  /** Leases matching the filter, newest first. */
  listLeases(filter: LeaseFilter, limit: number): Promise<LeaseRecord[]>;
  /** Live leases of these issuers whose TTL has passed: the reaper ends them. */
  listExpiredLeases(issuers: readonly string[], now: number, limit: number): Promise<LeaseRecord[]>;
  /** Intents claimed for minting before `claimedBefore` that never became active (THREATS.md H1). */
  listStaleIntents(claimedBefore: number, limit: number): Promise<LeaseRecord[]>;
  /** `revoke_pending` leases due by `now` whose claim is free or lapsed. */
  listDueRevocations(now: number, limit: number): Promise<LeaseRecord[]>;
  /** How many leases are in `status`; with `failing`, only those with a failed revocation attempt. */
  countLeases(filter: { status: LeaseStatus; failing?: boolean }): Promise<number>;
  /** Compare-and-set from `from`; a lease moved to `revoke_pending` is due at once. */
  endLease(
    id: string,
    from: LeaseStatus,
    to: 'revoke_pending' | 'revoked',
    at: number,
    reason: string,
  ): Promise<boolean>;
  /** Compare-and-set `issuing` → `active`, recording the minted credential's fingerprint. */
  activateLease(id: string, fingerprint: string, at: number): Promise<boolean>;
  /** Compare-and-set: claims a due revocation for reaper `by` until `until`. */
  claimRevocation(id: string, by: string, now: number, until: number): Promise<boolean>;
  /** Compare-and-set `revoke_pending` → `revoked`: the downstream confirmed. */
  confirmRevocation(id: string, at: number): Promise<boolean>;
  /** Records a failed attempt by the claim's holder; the next one is due at `nextAt`. */
  failRevocation(id: string, by: string, attempts: number, nextAt: number, error: string): Promise<boolean>;

  /** True once the task has ended (completed, failed or abandoned). */
  isTaskCompleted(agentId: string, taskId: string): Promise<boolean>;
  /** Compare-and-set: true the first time a task ends. */
  completeTask(
    agentId: string,
    taskId: string,
    at: number,
    outcome?: TaskOutcome,
    reason?: string | null,
  ): Promise<boolean>;
  /** The task's end and last heartbeat, or null when neither was ever recorded. */
  getTask(agentId: string, taskId: string): Promise<TaskRecord | null>;
  recordHeartbeat(agentId: string, taskId: string, at: number): Promise<void>;
  /** Running tasks whose last heartbeat is before `before`. */
  listIdleTasks(
    before: number,
    limit: number,
  ): Promise<Array<{ agentId: string; taskId: string; lastHeartbeatAt: number }>>;

  /** Requests of one agent in one status, newest first (novelty, history). */
  listAgentRequests(agentId: string, status: RequestStatus, limit: number): Promise<AccessRequestRecord[]>;
  /** Requests that went to review: pending ones, or decided ones, newest first. */
  listReviewRequests(
    filter: { pending: boolean; status?: RequestStatus; agentId?: string },
    limit: number,
  ): Promise<AccessRequestRecord[]>;
  /**
   * Compare-and-set: true the first time a live (`issuing` or `active`) lease's credential is
   * handed to its agent, or claimed for minting by a `delivery` issuer.
   */
  markLeaseDelivered(leaseId: string, at: number): Promise<boolean>;

  insertReviewer(reviewer: ReviewerRecord): Promise<void>;
  getReviewer(id: string): Promise<ReviewerRecord | null>;
  getReviewerByEmail(email: string): Promise<ReviewerRecord | null>;
  listReviewers(): Promise<ReviewerRecord[]>;
  setReviewerStatus(
    id: string,
    from: ReviewerRecord['status'],
    to: ReviewerRecord['status'],
  ): Promise<boolean>;
  insertReviewerCredential(credential: ReviewerCredentialRecord): Promise<void>;
  getReviewerCredential(id: string): Promise<ReviewerCredentialRecord | null>;
  listReviewerCredentials(reviewerId: string): Promise<ReviewerCredentialRecord[]>;
  /** Moves the signature counter forward only: false when `to` is not above the stored counter (a clone). */
  updateCredentialCounter(id: string, to: number, at: number): Promise<boolean>;

  insertInvite(invite: InviteRecord): Promise<void>;
  getInvite(tokenHash: string): Promise<InviteRecord | null>;
  /** Compare-and-set: true once, for an unused, unexpired invite. */
  consumeInvite(tokenHash: string, at: number): Promise<boolean>;

  insertSession(session: SessionRecord): Promise<void>;
  getSession(tokenHash: string): Promise<SessionRecord | null>;
  touchSession(tokenHash: string, at: number): Promise<void>;
  revokeSessions(selector: { tokenHash: string } | { reviewerId: string }, at: number): Promise<number>;

  insertChallenge(challenge: ChallengeRecord): Promise<void>;
  getChallenge(id: string): Promise<ChallengeRecord | null>;
  /** Compare-and-set: true once, for an unused, unexpired challenge. */
  consumeChallenge(id: string, at: number): Promise<boolean>;

  /** Fails with CS_ALREADY_VOTED when this reviewer voted on this request before. */
  insertVote(vote: VoteRecord): Promise<void>;
  listVotes(requestId: string): Promise<VoteRecord[]>;
  insertReceipt(requestId: string, jws: string, at: number): Promise<void>;
  getReceipt(requestId: string): Promise<string | null>;

  insertOutbox(record: OutboxRecord): Promise<void>;
  /** Undelivered, not given up, due now: oldest first. */
  listDueOutbox(now: number, limit: number): Promise<OutboxRecord[]>;
  /** Compare-and-set: true once per delivered notification. */
  markOutboxDelivered(id: string, at: number): Promise<boolean>;
  /**
   * Compare-and-set claim of one due notification for delivery: moves its next attempt to
   * `until` only if it is still undelivered and still due at `expectedNextAttemptAt`. True for
   * exactly one instance; a claimer that dies leaves the item due again at `until`.
   */
  claimOutbox(id: string, expectedNextAttemptAt: number, until: number): Promise<boolean>;
  markOutboxAttempt(
    id: string,
    attempts: number,
    nextAttemptAt: number,
    error: string,
    failedAt: number | null,
  ): Promise<void>;

  /**
   * Compare-and-set write of a sealed secret: inserts when `expectedVersion` is null, else
   * replaces the row only if it is still at `expectedVersion`. False when it lost the race.
   */
  putSealedSecret(record: SealedSecretRecord, expectedVersion: number | null): Promise<boolean>;
  getSealedSecret(name: string): Promise<SealedSecretRecord | null>;
  listSealedSecrets(): Promise<SealedSecretRecord[]>;
  /** Compare-and-set: replaces the wrapped data key of `name` at `version` wrapped by `fromKeyId`. */
  rewrapSealedSecret(
    name: string,
    version: number,
    fromKeyId: string,
    wrapped: { keyId: string; wrappedKey: string; wrapNonce: string },
    at: number,
  ): Promise<boolean>;
  /** Counts `uses` more encryptions under a master key; false (nothing counted) past `cap` (L4). */
  reserveKeyUse(keyId: string, uses: number, cap: number, at: number): Promise<boolean>;

  /** The newest audit sequence number (0 when the chain is empty). */
  auditHeadSeq(): Promise<number>;
  /**
   * Request ids named by audit events of the given types with `afterSeq < seq <= upToSeq`,
   * oldest first: the change feed every instance polls to learn what the others did.
   */
  listRequestChanges(
    afterSeq: number,
    upToSeq: number,
    types: readonly string[],
    limit: number,
  ): Promise<Array<{ seq: number; requestId: string }>>;

  /**
   * Appends one event to the chain, in this unit. Throws CS_AUDIT_WRITE_FAILED on any failure.
   * An adapter may place the unit's events at its end, under the chain's lock (PostgreSQL
   * does), so a unit never learns its events' sequence numbers and must not need them.
   */
  appendAudit(input: AuditEventInput, at: number): Promise<void>;
}

export interface Store {
  /**
   * Runs `work` atomically: every write in it commits together, durably, or none does.
   * `work` must await only `tx` methods (adapters may batch several units into one commit).
   */
  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * Runs one of core's named units (`STORE_UNITS`) atomically, like `transaction`. Optional:
   * an adapter that can run them closer to its connection does (SQLite: on the writer
   * thread); call them through core's `runUnit`, which falls back to `transaction`.
   */
  runUnit?<N extends StoreUnitName>(name: N, args: StoreUnitArgs<N>): Promise<StoreUnitResult<N>>;
  /** Read-only access to committed state. */
  read<T>(work: (tx: Pick<StoreTx, ReadMethods>) => Promise<T>): Promise<T>;
  listAgents(): Promise<AgentRecord[]>;
  /** Every audit event, oldest first. */
  auditEvents(): AsyncIterable<AuditEvent>;
  /** Null when writes work; otherwise the last write failure (readiness must say so, H8). */
  writeHealth(): { at: number; message: string } | null;
  /** Removes one-time token ids that can no longer be replayed. */
  pruneTokenIds(before: number): Promise<number>;
  close(): Promise<void>;
}

export type ReadMethods =
  | 'getAgent'
  | 'getAgentByThumbprint'
  | 'getAgentByWorkloadIdentity'
  | 'listWorkloadIdentities'
  | 'getRequest'
  | 'findRequestByIdempotencyKey'
  | 'listPendingRequests'
  | 'countPendingRequests'
  | 'listRequestsSince'
  | 'listVotesSince'
  | 'listEvidenceViews'
  | 'listShadowDecisions'
  | 'getLease'
  | 'getLeaseByCredentialId'
  | 'listLeases'
  | 'listExpiredLeases'
  | 'listStaleIntents'
  | 'listDueRevocations'
  | 'countLeases'
  | 'isTaskCompleted'
  | 'getTask'
  | 'listIdleTasks'
  | 'listAgentRequests'
  | 'listReviewRequests'
  | 'getReviewer'
  | 'getReviewerByEmail'
  | 'listReviewers'
  | 'getReviewerCredential'
  | 'listReviewerCredentials'
  | 'getInvite'
  | 'getSession'
  | 'getChallenge'
  | 'listVotes'
  | 'getReceipt'
  | 'listDueOutbox'
  | 'getSealedSecret'
  | 'listSealedSecrets'
  | 'auditHeadSeq'
  | 'listRequestChanges';
