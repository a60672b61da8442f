/**
 * THREATS.md R4 (with H3, H6, G4, A7, INV-3, INV-5): many requests, many concurrent actors
 * (submit, approve, deny, withdraw, complete the task, read and redeem, and the deadline
 * expiring under the reapers of every instance) spread over several real instances on one
 * store. Every operation goes into a history (op, request, actor, instance, invoke and
 * complete times, outcome; transport failures are indeterminate, as in Jepsen); afterwards a
 * checker reads the database and the history and states every violation it finds.
 */
import { verifyAuditChain } from '@countersign/core';
import type { HttpAgent, HttpReviewer } from './http-actors.js';
import { prng } from './prng.js';

export type Kind = 'one' | 'two' | 'short';
export type Op = 'submit' | 'approve' | 'deny' | 'withdraw' | 'complete' | 'read' | 'close';

export interface HistoryEntry {
  readonly op: Op;
  readonly requestId: string | null;
  readonly taskId: string | null;
  readonly actor: string;
  readonly instance: number;
  readonly invokedAt: number;
  readonly completedAt: number;
  /** HTTP status, or null when the call failed in transport (indeterminate). */
  readonly status: number | null;
  readonly code: string | null;
  /** The request status the answer claimed, when it claimed one. */
  readonly claimed: string | null;
  /** An access token the answer carried. */
  readonly credential: string | null;
}

export interface Created {
  readonly id: string;
  readonly kind: Kind;
  readonly agent: HttpAgent;
  readonly taskId: string;
  readonly deadlineAt: number;
}

/** Reads the database the instances share (PostgreSQL or the SQLite file). `$1`-style params. */
export interface Db {
  all<R>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface Workload {
  readonly total: number;
  readonly actors: number;
  readonly seed: number;
  readonly urls: readonly string[];
  readonly agents: readonly HttpAgent[];
  readonly reviewers: readonly HttpReviewer[];
}

const REQUEST_BODY: Record<Kind, (n: number, task: string) => Record<string, unknown>> = {
  one: (n, task) => ({
    action: 'write',
    resource: `postgres://prod/billing/inv-${n}`,
    intent: { purpose: 'r4 one approval', task_id: task },
  }),
  two: (n, task) => ({
    action: 'admin',
    resource: `postgres://prod/app/cfg-${n}`,
    intent: { purpose: 'r4 two approvals', task_id: task },
  }),
  short: (n, task) => ({
    action: 'delete',
    resource: `postgres://prod/app/tmp-${n}`,
    intent: { purpose: 'r4 short deadline', task_id: task },
  }),
};

/** Runs the workload; returns what was created and the full history. */
export async function runWorkload(
  w: Workload,
): Promise<{ created: Created[]; history: HistoryEntry[]; seconds: number }> {
  const random = prng(w.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const created: Created[] = [];
  const history: HistoryEntry[] = [];
  const tasks = new Map<HttpAgent, { id: string; used: number }>();
  const timers: Promise<void>[] = [];
  let submitting = 0;
  let n = 0;
  const started = performance.now();

  async function record(
    base: Omit<HistoryEntry, 'completedAt' | 'status' | 'code' | 'claimed' | 'credential' | 'invokedAt'>,
    call: () => Promise<{ status: number; body: any }>,
  ): Promise<{ status: number; body: any } | null> {
    const invokedAt = performance.now();
    try {
      const r = await call();
      history.push({
        ...base,
        invokedAt,
        completedAt: performance.now(),
        status: r.status,
        code: r.body?.error?.code ?? null,
        claimed: typeof r.body?.status === 'string' ? r.body.status : null,
        credential: r.body?.credential?.access_token ?? null,
      });
      return r;
    } catch {
      history.push({
        ...base,
        invokedAt,
        completedAt: performance.now(),
        status: null,
        code: null,
        claimed: null,
        credential: null,
      });
      return null;
    }
  }

  function taskFor(agent: HttpAgent): string {
    let t = tasks.get(agent);
    if (!t || t.used >= 4) {
      t = { id: `r4-${agent.id}-${++n}`, used: 0 };
      tasks.set(agent, t);
    }
    t.used++;
    return t.id;
  }

  async function submit(actor: string): Promise<void> {
    const agent = pick(w.agents);
    const kind: Kind = random() < 0.4 ? 'one' : random() < 0.55 ? 'two' : 'short';
    const task = taskFor(agent);
    const instance = Math.floor(random() * w.urls.length);
    const num = ++n;
    const r = await record({ op: 'submit', requestId: null, taskId: task, actor, instance }, () =>
      agent.call(w.urls[instance]!, 'POST', '/v1/access-requests', REQUEST_BODY[kind](num, task)),
    );
    if (r?.status === 201 && r.body.status === 'pending') {
      const c: Created = {
        id: r.body.id,
        kind,
        agent,
        taskId: task,
        deadlineAt: Date.parse(r.body.review.deadline_at),
      };
      created.push(c);
      // G4: an approval aimed at the deadline itself, a few ms either side.
      if (kind === 'short' && random() < 0.5) timers.push(boundaryApproval(c, `${actor}:boundary`));
    }
  }

  async function boundaryApproval(c: Created, actor: string): Promise<void> {
    const reviewer = pick(w.reviewers);
    const instance = Math.floor(random() * w.urls.length);
    // Sent from 400 ms before to 100 ms after the deadline: under load a request needs tens of
    // milliseconds to reach its unit, so the boundary is met from both sides.
    const jitter = -400 + random() * 500;
    await new Promise((r) => setTimeout(r, Math.max(0, c.deadlineAt - Date.now() - 1500)));
    const options = await fetchOptions(reviewer, instance, c.id, 'approve');
    if (!options) return;
    await new Promise((r) => setTimeout(r, Math.max(0, c.deadlineAt + jitter - Date.now())));
    await record({ op: 'approve', requestId: c.id, taskId: c.taskId, actor, instance }, () =>
      reviewer.decideWith(w.urls[instance]!, c.id, 'approve', options),
    );
  }

  async function fetchOptions(
    reviewer: HttpReviewer,
    instance: number,
    id: string,
    verdict: 'approve' | 'deny',
  ) {
    try {
      const o = await reviewer.options(w.urls[instance]!, id, verdict);
      return o.status === 200 ? o.body : null;
    } catch {
      return null;
    }
  }

  async function act(actor: string): Promise<void> {
    // Hot set: the newest requests, so actors collide on them.
    const c =
      created.length > 0 && random() < 0.85
        ? created[Math.max(0, created.length - 1 - Math.floor(random() * 24))]!
        : pick(created);
    const instance = Math.floor(random() * w.urls.length);
    const base = w.urls[instance]!;
    const roll = random();
    if (roll < 0.45) {
      const reviewer = pick(w.reviewers);
      const decideOn = Math.floor(random() * w.urls.length);
      await record({ op: 'approve', requestId: c.id, taskId: c.taskId, actor, instance: decideOn }, () =>
        reviewer.decide(base, c.id, 'approve', w.urls[decideOn]!),
      );
    } else if (roll < 0.53) {
      const reviewer = pick(w.reviewers);
      await record({ op: 'deny', requestId: c.id, taskId: c.taskId, actor, instance }, () =>
        reviewer.decide(base, c.id, 'deny'),
      );
    } else if (roll < 0.6) {
      await record({ op: 'withdraw', requestId: c.id, taskId: c.taskId, actor, instance }, () =>
        c.agent.call(base, 'POST', `/v1/access-requests/${c.id}/withdraw`),
      );
    } else if (roll < 0.65) {
      await record({ op: 'complete', requestId: null, taskId: c.taskId, actor, instance }, () =>
        c.agent.call(base, 'POST', `/v1/tasks/${c.taskId}/complete`),
      );
    } else {
      await record({ op: 'read', requestId: c.id, taskId: c.taskId, actor, instance }, () =>
        c.agent.call(base, 'GET', `/v1/access-requests/${c.id}`),
      );
    }
  }

  await Promise.all(
    Array.from({ length: w.actors }, async (_, i) => {
      const actor = `actor-${i}`;
      while (created.length < w.total) {
        const room = created.length + submitting < w.total;
        if (room && (created.length < 4 || random() < 0.3)) {
          submitting++;
          try {
            await submit(actor);
          } finally {
            submitting--;
          }
        } else if (created.length > 0) {
          await act(actor);
        } else {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }),
  );
  await Promise.all(timers);
  // Let short deadlines pass (the reapers expire them), then close what is still open: the
  // closers race the reapers and any read that expires a request.
  const lastShort = Math.max(0, ...created.filter((c) => c.kind === 'short').map((c) => c.deadlineAt));
  await new Promise((r) => setTimeout(r, Math.max(0, lastShort - Date.now() + 500)));
  const open = [...created];
  await Promise.all(
    Array.from({ length: w.actors }, async (_, i) => {
      for (let c = open.pop(); c; c = open.pop()) {
        const instance = Math.floor(random() * w.urls.length);
        const read = await c.agent
          .call(w.urls[instance]!, 'GET', `/v1/access-requests/${c.id}`)
          .catch(() => null);
        if (read?.body?.credential) {
          history.push({
            op: 'read',
            requestId: c.id,
            taskId: c.taskId,
            actor: `closer-${i}`,
            instance,
            invokedAt: performance.now(),
            completedAt: performance.now(),
            status: read.status,
            code: null,
            claimed: read.body.status,
            credential: read.body.credential.access_token,
          });
        }
        if (read?.body?.status === 'pending') {
          await record(
            { op: 'close', requestId: c.id, taskId: c.taskId, actor: `closer-${i}`, instance },
            () => c.agent.call(w.urls[instance]!, 'POST', `/v1/access-requests/${c.id}/withdraw`),
          );
        }
      }
    }),
  );
  return { created, history, seconds: (performance.now() - started) / 1000 };
}

const TERMINAL_EVENTS: Record<string, string> = {
  'review.expired': 'expired',
  'review.cancelled': 'cancelled',
  'access_request.withdrawn': 'withdrawn',
};

export interface Verdict {
  readonly violations: string[];
  readonly figures: Record<string, number | string>;
}

/** The history checker: per request, one terminal state, once; one lease at most; quorum of distinct people. */
export async function check(
  db: Db,
  created: readonly Created[],
  history: readonly HistoryEntry[],
): Promise<Verdict> {
  const violations: string[] = [];
  const v = (message: string) => {
    if (violations.length < 50) violations.push(message);
  };
  const requests = await db.all<{
    id: string;
    status: string;
    lease_id: string | null;
    task_id: string;
    agent_id: string;
    decision: string;
    decided_at: number | string | null;
    deadline_at: number | string | null;
  }>(
    "select id, status, lease_id, task_id, agent_id, decision, decided_at, deadline_at from access_requests where task_id like 'r4-%'",
  );
  const byId = new Map(requests.map((r) => [r.id, r]));
  if (requests.length !== created.length) v(`${requests.length} requests stored, ${created.length} created`);
  const events = await db.all<{
    seq: number | string;
    type: string;
    request_id: string | null;
    data: string;
  }>(
    "select seq, type, request_id, data from audit_events where type in ('review.decided', 'review.expired', 'review.cancelled', 'access_request.withdrawn', 'lease.issued', 'lease.delivered', 'lease.revoked') order by seq",
  );
  const leases = await db.all<{
    id: string;
    request_id: string;
    status: string;
    task_id: string;
    agent_id: string;
    delivered_at: number | string | null;
  }>('select id, request_id, status, task_id, agent_id, delivered_at from leases');
  const votes = await db.all<{ request_id: string; reviewer_id: string; verdict: string }>(
    'select request_id, reviewer_id, verdict from votes',
  );
  const completed = new Set(
    (await db.all<{ agent_id: string; task_id: string }>('select agent_id, task_id from tasks')).map(
      (t) => `${t.agent_id}\u0000${t.task_id}`,
    ),
  );

  const terminal = new Map<string, string[]>();
  const leaseEvents = new Map<string, { issued: number; delivered: number }>();
  for (const e of events) {
    const data = JSON.parse(e.data) as Record<string, unknown>;
    if (e.type === 'review.decided') {
      const verdict = data.verdict === 'approved' ? 'allowed' : 'denied';
      terminal.set(e.request_id!, [...(terminal.get(e.request_id!) ?? []), verdict]);
    } else if (e.type in TERMINAL_EVENTS) {
      terminal.set(e.request_id!, [...(terminal.get(e.request_id!) ?? []), TERMINAL_EVENTS[e.type]!]);
    } else if (e.type === 'lease.issued' || e.type === 'lease.delivered') {
      const id = String(data.lease_id);
      const c = leaseEvents.get(id) ?? { issued: 0, delivered: 0 };
      if (e.type === 'lease.issued') c.issued++;
      else c.delivered++;
      leaseEvents.set(id, c);
    }
  }
  const leasesByRequest = new Map<string, typeof leases>();
  for (const l of leases)
    leasesByRequest.set(l.request_id, [...(leasesByRequest.get(l.request_id) ?? []), l]);
  const votesByRequest = new Map<string, typeof votes>();
  for (const x of votes) votesByRequest.set(x.request_id, [...(votesByRequest.get(x.request_id) ?? []), x]);

  const states: Record<string, number> = {};
  for (const c of created) {
    const r = byId.get(c.id);
    if (!r) {
      v(`${c.id}: created but not stored`);
      continue;
    }
    states[r.status] = (states[r.status] ?? 0) + 1;
    if (r.status === 'pending') v(`${c.id}: still pending at the end`);
    // H3 / INV-3: exactly one terminal transition, and it is the state stored.
    const ends = terminal.get(c.id) ?? [];
    if (ends.length !== 1) v(`${c.id}: ${ends.length} terminal transitions (${ends.join(', ')})`);
    else if (ends[0] !== r.status) v(`${c.id}: audit says ${ends[0]}, store says ${r.status}`);
    // One lease at most, iff allowed.
    const ls = leasesByRequest.get(c.id) ?? [];
    if (ls.length > 1) v(`${c.id}: ${ls.length} leases`);
    if ((r.status === 'allowed') !== (ls.length === 1))
      v(`${c.id}: status ${r.status} with ${ls.length} lease(s)`);
    if (ls[0] && r.lease_id !== ls[0].id)
      v(`${c.id}: request names lease ${r.lease_id}, lease is ${ls[0].id}`);
    // A7 / INV-6: one vote per person; an approval means distinct approvers reached the quorum.
    const vs = votesByRequest.get(c.id) ?? [];
    const people = new Set(vs.map((x) => x.reviewer_id));
    if (people.size !== vs.length) v(`${c.id}: a reviewer voted twice`);
    const needed = (JSON.parse(r.decision) as { obligations: { approvals: number } }).obligations.approvals;
    const approvers = new Set(vs.filter((x) => x.verdict === 'approve').map((x) => x.reviewer_id));
    const denied = vs.some((x) => x.verdict === 'deny');
    if (r.status === 'allowed' && (approvers.size < needed || denied))
      v(`${c.id}: allowed with ${approvers.size}/${needed} approvers`);
    // H6: a quorum that was met must have ended the review (a write skew would leave it open).
    if (r.status !== 'allowed' && !denied && approvers.size >= needed)
      v(`${c.id}: ${approvers.size}/${needed} approvals but ${r.status}`);
    if (r.status === 'denied' && !denied) v(`${c.id}: denied without a deny vote`);
    // G4 / A11: nothing is decided by people at or after the deadline.
    if ((r.status === 'allowed' || r.status === 'denied') && Number(r.decided_at) >= Number(r.deadline_at)) {
      v(`${c.id}: ${r.status} at ${r.decided_at}, deadline ${r.deadline_at}`);
    }
  }

  // INV-5: no live lease for a completed task; every lease issued and delivered at most once.
  for (const l of leases) {
    if (l.status === 'active' && completed.has(`${l.agent_id}\u0000${l.task_id}`))
      v(`lease ${l.id}: active but its task is complete`);
    const e = leaseEvents.get(l.id) ?? { issued: 0, delivered: 0 };
    if (e.issued !== 1) v(`lease ${l.id}: issued ${e.issued} times in the audit chain`);
    if (e.delivered > 1) v(`lease ${l.id}: delivered ${e.delivered} times`);
  }

  // The clients' side: at most one credential per request, and only what the audit shows.
  const credentials = new Map<string, Set<string>>();
  for (const h of history) {
    if (h.credential && h.requestId)
      credentials.set(h.requestId, (credentials.get(h.requestId) ?? new Set()).add(h.credential));
  }
  let received = 0;
  for (const [id, set] of credentials) {
    received += set.size;
    if (set.size > 1) v(`${id}: ${set.size} different credentials received`);
    const lease = leasesByRequest.get(id)?.[0];
    if (!lease || lease.delivered_at === null || (leaseEvents.get(lease.id)?.delivered ?? 0) !== 1) {
      v(`${id}: a credential was received without a delivered lease in the audit chain`);
    }
  }
  const deliveries = history.filter((h) => h.credential).length;
  if (deliveries !== received) v(`${deliveries - received} repeated credential deliveries`);

  // Every acknowledged ending matches the end state (Elle-style: a committed claim is never lost).
  let acknowledged = 0;
  for (const h of history) {
    if (h.status !== 200 || !h.requestId) continue;
    const r = byId.get(h.requestId);
    if (!r) continue;
    const claimedEnd =
      ((h.op === 'withdraw' || h.op === 'close') && 'withdrawn') ||
      ((h.op === 'approve' || h.op === 'deny') && h.claimed !== 'pending' && h.claimed) ||
      null;
    if (!claimedEnd) continue;
    acknowledged++;
    if (claimedEnd !== r.status)
      v(`${h.requestId}: ${h.actor} was told ${claimedEnd} (${h.op}), it ended ${r.status}`);
  }
  const endings = new Map<string, number>();
  for (const h of history) {
    if (h.status !== 200 || !h.requestId) continue;
    const ends =
      h.op === 'withdraw' ||
      h.op === 'close' ||
      ((h.op === 'approve' || h.op === 'deny') && h.claimed !== null && h.claimed !== 'pending');
    if (ends) endings.set(h.requestId, (endings.get(h.requestId) ?? 0) + 1);
  }
  for (const [id, count] of endings) if (count > 1) v(`${id}: ${count} callers were each told they ended it`);

  // The chain itself.
  const chain = await db.all<Record<string, unknown>>('select * from audit_events order by seq');
  const { toAuditEvent } = await import('../../packages/store/src/sql-store.js');
  const verified = verifyAuditChain(chain.map((row) => toAuditEvent(row as never)));
  if (!verified.ok) v(`audit chain: ${JSON.stringify(verified)}`);

  const codes: Record<string, number> = {};
  for (const h of history) {
    const key = `${h.op} ${h.status ?? 'indeterminate'}${h.code ? ` ${h.code}` : ''}`;
    codes[key] = (codes[key] ?? 0) + 1;
  }
  const fiveHundreds = history.filter((h) => h.status !== null && h.status >= 500 && h.status !== 503).length;
  if (fiveHundreds > 0) v(`${fiveHundreds} answers were 5xx other than 503`);
  const boundary = history.filter((h) => h.actor.endsWith(':boundary'));
  return {
    violations,
    figures: {
      g4_boundary_approvals: boundary.length,
      g4_boundary_accepted: boundary.filter((h) => h.status === 200).length,
      requests: created.length,
      operations: history.length,
      indeterminate: history.filter((h) => h.status === null).length,
      unavailable_503: history.filter((h) => h.status === 503).length,
      acknowledged_endings: acknowledged,
      credentials_received: received,
      leases: leases.length,
      chain_events: chain.length,
      ...Object.fromEntries(Object.entries(states).map(([k, n]) => [`ended_${k}`, n])),
      outcomes: JSON.stringify(codes),
    },
  };
}
