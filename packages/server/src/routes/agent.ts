/** The agent API: ask, wait, withdraw, complete. Thin: validate, call a use case, map. */
import {
  assertToolCallDigest,
  CountersignError,
  canonicalJson,
  checkForbiddenActions,
  completeTask,
  deliverCredential,
  failTask,
  getAccessRequest,
  heartbeatTask,
  type LeaseRecord,
  runUnit,
  submitAccessRequest,
  withdrawAccessRequest,
} from '@countersign/core';
import {
  AccessRequestBodySchema,
  ForbiddenChecksBodySchema,
  identifier,
  WaitQuerySchema,
} from '@countersign/protocol';
import { failpoint } from '@countersign/store';
import { Hono } from 'hono';
import { z } from 'zod';
import type { ServerDeps } from '../app.js';
import { timed } from '../metrics.js';
import { authenticateAgent } from '../middleware/agent-auth.js';
import { jsonBodyLimit, readJson } from '../middleware/json.js';
import { accessRequestView, leaseView } from '../views.js';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;

function pathId(value: string | undefined): string {
  const parsed = identifier.safeParse(value);
  if (!parsed.success) throw new CountersignError('CS_INVALID_IDENTIFIER', 'malformed id in path');
  return parsed.data;
}

export function agentRoutes(deps: ServerDeps): Hono {
  const { ctx } = deps;
  const app = new Hono();

  app.post('/v1/access-requests', jsonBodyLimit, async (c) => {
    const who = await timed(deps.metrics, 'authentication', () => authenticateAgent(deps, c));
    const key = c.req.header('idempotency-key') ?? null;
    if (key !== null && !IDEMPOTENCY_KEY.test(key)) {
      throw new CountersignError(
        'CS_INVALID_REQUEST',
        'Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]',
      );
    }
    const { value, raw } = await readJson(c, AccessRequestBodySchema);
    const result = await submitAccessRequest({
      ctx,
      input: {
        agent: who.agent,
        assertion: who.assertion,
        request: value,
        bodyCanonical: canonicalJson(raw),
        idempotencyKey: key,
      },
    });
    failpoint('response.before-send');
    if (!result.replayed) deps.metrics.decisions.inc({ outcome: result.record.decision.outcome });
    if (result.replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(accessRequestView(result.record, result.credential), result.replayed ? 200 : 201);
  });

  /**
   * Which of these (action, resource) pairs would policy forbid outright for this agent? The
   * MCP gateway's `hide_forbidden` asks it for `tools/list`. One audit event per call, written
   * with the assertion's consumption before the answer; no request is recorded.
   */
  app.post('/v1/access-requests/forbidden', jsonBodyLimit, async (c) => {
    const who = await authenticateAgent(deps, c);
    const { value } = await readJson(c, ForbiddenChecksBodySchema);
    const result = await checkForbiddenActions({
      ctx,
      input: { agent: who.agent, assertion: who.assertion, checks: value.checks },
    });
    return c.json({
      forbidden: result.forbidden,
      invalid: result.invalid,
      policy_version: result.policyVersion,
    });
  });

  app.get('/v1/access-requests/:id', async (c) => {
    const who = await authenticateAgent(deps, c);
    const requestId = pathId(c.req.param('id'));
    const waitText = c.req.query('wait');
    const wait = waitText === undefined ? 0 : WaitQuerySchema.safeParse(waitText);
    if (typeof wait !== 'number' && !wait.success) {
      throw new CountersignError('CS_INVALID_REQUEST', 'wait must be a whole number of seconds from 0 to 60');
    }
    const waitSeconds = typeof wait === 'number' ? wait : wait.data;
    await runUnit(ctx.store, 'consumeAssertion', who.assertion);
    const input = { agentId: who.agent.id, requestId };
    let record = await getAccessRequest({ ctx, input });
    // `call_digest`: the MCP gateway redeeming an approval for the call in its hands.
    const callDigest = c.req.query('call_digest');
    if (callDigest !== undefined) assertToolCallDigest(record, callDigest);
    const until = ctx.clock.now() + waitSeconds * 1000;
    while (record.status === 'pending') {
      const now = ctx.clock.now();
      if (now >= until) break;
      // Wake on any change, or at the review deadline to expire it, whichever comes first.
      const wakeAt = Math.min(until, record.deadlineAt ?? until);
      await deps.waiters.wait(requestId, Math.max(0, wakeAt - now) + 5, c.req.raw.signal);
      if (c.req.raw.signal.aborted) break;
      record = await getAccessRequest({ ctx, input });
      if (ctx.clock.now() >= until) break;
    }
    // An approved request's credential is handed over once, to its agent, on its first read.
    const credential = await deliverCredential({
      ctx,
      input: { request: record, presenterJkt: who.assertion.dpopJkt },
    });
    const receipt =
      record.status === 'allowed' ? await ctx.store.read((tx) => tx.getReceipt(record.id)) : null;
    return c.json({ ...accessRequestView(record, credential), ...(receipt ? { receipt } : {}) });
  });

  app.post('/v1/access-requests/:id/withdraw', async (c) => {
    const who = await authenticateAgent(deps, c);
    const record = await withdrawAccessRequest({
      ctx,
      input: { agentId: who.agent.id, requestId: pathId(c.req.param('id')), assertion: who.assertion },
    });
    return c.json(accessRequestView(record));
  });

  /**
   * The task's ended leases: their downstream revocations (a database role) run now, inside
   * this request, so the agent's credentials are gone when it gets the answer. Whatever the
   * downstream did not confirm stays `revoke_pending` and the reaper retries it.
   */
  async function endedView(taskId: string, status: string, already: boolean, ended: LeaseRecord[]) {
    const pending = await deps.reaper.revokeNow(
      ended.filter((l) => l.status === 'revoke_pending').map((l) => l.id),
    );
    return {
      task_id: taskId,
      status,
      already_completed: already,
      revoked_leases: ended.map((l) => l.id),
      pending_revocations: pending,
    };
  }

  app.post('/v1/tasks/:task_id/complete', async (c) => {
    const who = await authenticateAgent(deps, c);
    const taskId = pathId(c.req.param('task_id'));
    const result = await completeTask({
      ctx,
      input: { agentId: who.agent.id, taskId, assertion: who.assertion },
    });
    return c.json(await endedView(taskId, 'completed', result.alreadyCompleted, result.revoked));
  });

  app.post('/v1/tasks/:task_id/fail', jsonBodyLimit, async (c) => {
    const who = await authenticateAgent(deps, c);
    const taskId = pathId(c.req.param('task_id'));
    // The body is optional: `{ "reason": "..." }` (the agent's claim, kept in the audit trail).
    const reason = c.req.header('content-type')
      ? (await readJson(c, z.strictObject({ reason: z.string().min(1).max(1000).optional() }))).value.reason
      : undefined;
    const result = await failTask({
      ctx,
      input: { agentId: who.agent.id, taskId, reason: reason ?? null, assertion: who.assertion },
    });
    return c.json(await endedView(taskId, 'failed', result.alreadyEnded, result.revoked));
  });

  app.post('/v1/tasks/:task_id/heartbeat', async (c) => {
    const who = await authenticateAgent(deps, c);
    const taskId = pathId(c.req.param('task_id'));
    const result = await heartbeatTask({
      ctx,
      input: { agentId: who.agent.id, taskId, assertion: who.assertion },
    });
    return c.json({
      task_id: taskId,
      status: 'running',
      idle_timeout_seconds: result.idleTimeoutSeconds,
      leases: result.leases.map((l) => leaseView(l, ctx.clock.now())),
    });
  });

  return app;
}
