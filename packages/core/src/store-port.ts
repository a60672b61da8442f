/**
 * The store port. One contract, several adapters (SQLite now, PostgreSQL next), one contract
 * test suite for all. Invariants live here as constraints and compare-and-set updates, never
 * as read-then-write in the caller.
 */
import type { AuditEvent, AuditEventInput } from './audit.js';
import type { AccessRequestRecord, AgentRecord, LeaseRecord } from './records.js';
import type { RequestStatus } from './types.js';

export type LeaseSelector =
  | { readonly leaseId: string }
  | { readonly agentId: string; readonly taskId: string }
  | { readonly agentId: string };

/** Operations inside one atomic unit of work. */
export interface StoreTx {
  getAgent(id: string): Promise<AgentRecord | null>;
  getAgentByThumbprint(thumbprint: string): Promise<AgentRecord | null>;
  /** Fails with CS_AGENT_EXISTS when the id or the key is already registered. */
  insertAgent(agent: AgentRecord): Promise<void>;
  /** Compare-and-set: true when the status changed. */
  setAgentStatus(id: string, from: AgentRecord['status'], to: AgentRecord['status']): Promise<boolean>;

  /** Records a one-time token id; false when it was seen before (a replay). */
  consumeTokenId(issuer: string, tokenId: string, expiresAt: number): Promise<boolean>;

  getRequest(id: string): Promise<AccessRequestRecord | null>;
  findRequestByIdempotencyKey(agentId: string, key: string): Promise<AccessRequestRecord | null>;
  insertRequest(record: AccessRequestRecord): Promise<void>;
  /** Compare-and-set from `pending`; true for exactly one caller. */
  finishPendingRequest(
    id: string,
    to: Exclude<RequestStatus, 'pending'>,
    at: number,
    leaseId: string | null,
  ): Promise<boolean>;
  /** Pending requests of an agent (for suspension) or past their deadline (for the reaper). */
  listPendingRequests(
    filter: { agentId: string } | { deadlineBefore: number },
    limit: number,
  ): Promise<AccessRequestRecord[]>;

  insertLease(lease: LeaseRecord): Promise<void>;
  getLease(id: string): Promise<LeaseRecord | null>;
  getLeaseByCredentialId(credentialId: string): Promise<LeaseRecord | null>;
  /** Revokes active, unexpired-or-not leases matching the selector; returns those it changed. */
  revokeLeases(selector: LeaseSelector, at: number, reason: string): Promise<LeaseRecord[]>;

  isTaskCompleted(agentId: string, taskId: string): Promise<boolean>;
  /** Compare-and-set: true the first time a task is completed. */
  completeTask(agentId: string, taskId: string, at: number): Promise<boolean>;

  /** Appends one event to the chain. Throws CS_AUDIT_WRITE_FAILED on any failure. */
  appendAudit(input: AuditEventInput, at: number): Promise<AuditEvent>;
}

export interface Store {
  /**
   * Runs `work` atomically: every write in it commits together, durably, or none does.
   * `work` must await only `tx` methods (adapters may batch several units into one commit).
   */
  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Read-only access to committed state. */
  read<T>(work: (tx: Pick<StoreTx, ReadMethods>) => Promise<T>): Promise<T>;
  listAgents(): Promise<AgentRecord[]>;
  /** Every audit event, oldest first. */
  auditEvents(): AsyncIterable<AuditEvent>;
  /** Removes one-time token ids that can no longer be replayed. */
  pruneTokenIds(before: number): Promise<number>;
  close(): Promise<void>;
}

export type ReadMethods =
  | 'getAgent'
  | 'getAgentByThumbprint'
  | 'getRequest'
  | 'findRequestByIdempotencyKey'
  | 'listPendingRequests'
  | 'getLease'
  | 'getLeaseByCredentialId'
  | 'isTaskCompleted';
