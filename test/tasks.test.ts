/** Task lifecycle: heartbeat, complete, fail, and abandonment by the durable reaper. */
import { afterEach, describe, expect, it } from 'vitest';
import { editConfig } from './issuers/kinds.js';
import { body, type Harness, startHarness, type TestAgent } from './support/harness.js';

describe('task lifecycle', () => {
  let h: Harness;
  let agent: TestAgent;
  afterEach(async () => h.close());

  async function start(idleTimeout?: string) {
    h = await startHarness({
      configure: (home) => {
        if (idleTimeout) editConfig(home, (c) => (c.tasks = { idle_timeout: idleTimeout }));
      },
    });
    agent = await h.addAgent('spiffe://acme.dev/agent/tasks', { environment: 'staging' });
  }

  async function events(): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
    const out = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) out.push({ type: e.type, data: e.data });
    return out;
  }

  it('a heartbeat answers the task and its leases; an ended task refuses heartbeats', async () => {
    await start();
    const { json } = await h.requestAccess(agent, body({ intent: { purpose: 'p', task_id: 'hb-1' } }));
    const beat = await h.call('POST', '/v1/tasks/hb-1/heartbeat', { agent });
    expect(beat.status).toBe(200);
    const answer = (await beat.json()) as any;
    expect(answer).toMatchObject({ task_id: 'hb-1', status: 'running', idle_timeout_seconds: null });
    expect(answer.leases).toMatchObject([{ lease_id: json.lease_id, status: 'active', state: 'active' }]);
    expect(JSON.stringify(answer)).not.toContain(json.credential.access_token);
    h.clock.advance(16 * 60);
    const later = (await (await h.call('POST', '/v1/tasks/hb-1/heartbeat', { agent })).json()) as any;
    expect(later.leases[0]).toMatchObject({ status: 'active', state: 'expired' });
    await h.call('POST', '/v1/tasks/hb-1/complete', { agent });
    const refused = await h.call('POST', '/v1/tasks/hb-1/heartbeat', { agent });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as any).error.code).toBe('CS_TASK_COMPLETED');
  });

  it('failing a task revokes its leases, refuses new requests and audits the reason', async () => {
    await start();
    const { json } = await h.requestAccess(agent, body({ intent: { purpose: 'p', task_id: 'f-1' } }));
    const res = await h.call('POST', '/v1/tasks/f-1/fail', { agent, body: { reason: 'upstream timeout' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'failed', revoked_leases: [json.lease_id] });
    const lease = await h.server.deps.ctx.store.read((tx) => tx.getLease(json.lease_id));
    expect(lease).toMatchObject({ status: 'revoked', revokeReason: 'task_failed' });
    const again = await h.requestAccess(agent, body({ intent: { purpose: 'p', task_id: 'f-1' } }));
    expect(again.json.error.code).toBe('CS_TASK_COMPLETED');
    const failed = (await events()).find((e) => e.type === 'task.failed');
    expect(failed?.data).toMatchObject({ task_id: 'f-1', reason: 'upstream timeout', leases_revoked: 1 });
    // Without a body, too; and a bad body is a coded 400.
    expect((await h.call('POST', '/v1/tasks/f-2/fail', { agent })).status).toBe(200);
    const bad = await h.call('POST', '/v1/tasks/f-3/fail', { agent, body: { reason: 5 } });
    expect(bad.status).toBe(400);
  });

  it('the reaper abandons a task that heartbeated and fell silent past the idle timeout, ending its leases', async () => {
    await start('10m');
    const quiet = await h.requestAccess(agent, body({ intent: { purpose: 'p', task_id: 'quiet' } }));
    const busy = await h.requestAccess(agent, body({ intent: { purpose: 'p', task_id: 'busy' } }));
    const never = await h.requestAccess(agent, body({ intent: { purpose: 'p', task_id: 'no-beat' } }));
    await h.call('POST', '/v1/tasks/quiet/heartbeat', { agent });
    await h.call('POST', '/v1/tasks/busy/heartbeat', { agent });
    h.clock.advance(9 * 60);
    await h.call('POST', '/v1/tasks/busy/heartbeat', { agent });
    h.clock.advance(2 * 60);
    const pass = await h.server.reapLeases();
    expect(pass.abandonedTasks).toBe(1);
    const status = (id: string) =>
      h.server.deps.ctx.store.read((tx) => tx.getLease(id)).then((l) => l?.status);
    expect(await status(quiet.json.lease_id)).toBe('revoked');
    expect(await status(busy.json.lease_id)).toBe('active');
    // A task that never heartbeats is not subject to the idle timeout (its leases still end at TTL).
    expect(await status(never.json.lease_id)).toBe('active');
    const abandoned = (await events()).find((e) => e.type === 'task.abandoned');
    expect(abandoned?.data).toMatchObject({ task_id: 'quiet', leases_revoked: 1 });
    expect((await h.call('POST', '/v1/tasks/quiet/heartbeat', { agent })).status).toBe(409);
    expect((await h.server.reapLeases()).abandonedTasks).toBe(0);
  });
});
