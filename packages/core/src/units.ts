/**
 * Named units of work: data in, data out, no closure over anything but their arguments.
 * Because nothing in them reaches outside the transaction, a store adapter may run them
 * wherever its write connection lives (the SQLite adapter runs them on its writer thread,
 * next to the connection, so the event loop never waits on a statement or an fsync).
 * Any adapter without a faster way runs them as an ordinary `transaction`.
 *
 * The hot paths are named units; everything else may stay a closure. A unit's arguments and
 * result must survive structured cloning (plain records, no functions, no class instances).
 */
import type { AuditEventInput } from './audit.js';
import { CountersignError } from './errors.js';
import type { AccessRequestRecord, LeaseRecord, OutboxRecord, ShadowDecisionRecord } from './records.js';
import type { Store, StoreTx } from './store-port.js';
import { consumeAssertion } from './usecases/consume-assertion.js';
import type { Assertion } from './usecases/context.js';
import { recordLease } from './usecases/lease-record.js';

/** Everything the unit that records a new access request writes, computed before the unit. */
export interface CommitAccessRequestArgs {
  readonly assertion: Assertion;
  readonly record: AccessRequestRecord;
  /** Audit events in order, before the lease's own `lease.issued` event. */
  readonly events: readonly AuditEventInput[];
  readonly outbox: readonly OutboxRecord[];
  readonly lease: LeaseRecord | null;
  readonly now: number;
  /**
   * For a review: the most pending reviews the agent may have (null: no cap). Checked here,
   * after lockAgent, so concurrent submissions by one agent cannot all slip under it.
   */
  readonly maxPending: number | null;
  /** Shadow mode: where a candidate policy set decided otherwise, recorded with the request. */
  readonly shadow?: ShadowDecisionRecord | null;
}

/** What the decision's unit did: recorded the request, or refused it over the pending cap. */
export type CommitAccessRequestResult =
  | { readonly recorded: true }
  | { readonly recorded: false; readonly code: 'CS_TOO_MANY_PENDING'; readonly pending: number };

/**
 * Consumes the assertion and records the request, its decision, its audit events, its
 * notifications and (for an allow) its lease: all or nothing (invariant 1).
 */
async function commitAccessRequest(
  tx: StoreTx,
  a: CommitAccessRequestArgs,
): Promise<CommitAccessRequestResult> {
  await consumeAssertion(tx, a.assertion);
  // Re-checked inside the unit: a suspension or task completion that committed after
  // authentication must win (invariant 5, THREATS.md B12, C1). lockAgent, not a plain read:
  // at READ COMMITTED a read would let a completion or suspension committing meanwhile miss
  // this unit's lease (THREATS.md H6).
  if ((await tx.lockAgent(a.record.agentId))?.status !== 'active') {
    throw new CountersignError('CS_AGENT_SUSPENDED', 'agent is suspended');
  }
  if (await tx.isTaskCompleted(a.record.agentId, a.record.taskId)) {
    throw new CountersignError('CS_TASK_COMPLETED', `task ${a.record.taskId} is already complete`);
  }
  if (a.record.status === 'pending' && a.maxPending !== null) {
    // The agent's row is locked above: on PostgreSQL a concurrent submission by the same agent
    // waits here until this unit commits, and its count (a new READ COMMITTED snapshot per
    // statement) then sees this unit's request. On SQLite units run one at a time anyway.
    const pending = await tx.countPendingRequests(a.record.agentId, a.now);
    if (pending >= a.maxPending) {
      // Refused, not recorded: one audit event says who flooded the queue, and the assertion
      // stays consumed (THREATS.md D-group, OWASP T10 "overwhelming human in the loop").
      const received = a.events[0];
      await tx.appendAudit(
        {
          type: 'access_request.refused',
          actor: received?.actor ?? { type: 'agent', id: a.record.agentId },
          requestId: null,
          data: {
            code: 'CS_TOO_MANY_PENDING',
            agent_id: a.record.agentId,
            action: a.record.action,
            resource: a.record.resource,
            pending,
            max_pending: a.maxPending,
            reviewer_group: a.record.decision.obligations.reviewerGroup,
          },
        },
        a.now,
      );
      return { recorded: false, code: 'CS_TOO_MANY_PENDING', pending };
    }
  }
  await tx.insertRequest(a.record);
  for (const event of a.events) await tx.appendAudit(event, a.now);
  for (const message of a.outbox) await tx.insertOutbox(message);
  if (a.lease) await recordLease(tx, a.lease, a.now);
  if (a.shadow) await tx.insertShadowDecision(a.shadow);
  return { recorded: true };
}

/** Removes one-time token ids that expired before `before`; returns how many. */
async function pruneTokenIds(tx: StoreTx, a: { readonly before: number }): Promise<number> {
  return tx.pruneTokenIds(a.before);
}

export const STORE_UNITS = {
  commitAccessRequest,
  consumeAssertion: (tx: StoreTx, a: Assertion): Promise<void> => consumeAssertion(tx, a),
  pruneTokenIds,
} as const;

export type StoreUnitName = keyof typeof STORE_UNITS;
export type StoreUnitArgs<N extends StoreUnitName> = Parameters<(typeof STORE_UNITS)[N]>[1];
export type StoreUnitResult<N extends StoreUnitName> = Awaited<ReturnType<(typeof STORE_UNITS)[N]>>;

/** Runs a named unit: on the adapter's own path when it has one, else as a transaction. */
export function runUnit<N extends StoreUnitName>(
  store: Store,
  name: N,
  args: StoreUnitArgs<N>,
): Promise<StoreUnitResult<N>> {
  if (store.runUnit) return store.runUnit(name, args);
  const unit = STORE_UNITS[name] as (tx: StoreTx, a: StoreUnitArgs<N>) => Promise<StoreUnitResult<N>>;
  return store.transaction((tx) => unit(tx, args));
}
