/** Review notifications: Standard Webhooks signatures, retries with a stable id, nothing sensitive (THREATS.md K). */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countersignCount } from './support/db.js';
import { body, type Harness, startHarness, type TestAgent, TestClock } from './support/harness.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

describe('webhook notifications', () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  let h: Harness;
  let agent: TestAgent;
  let received: Received[];
  let failNext: number;
  let receiver: ReturnType<typeof createServer>;

  beforeEach(async () => {
    received = [];
    failNext = 0;
    receiver = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: text });
        res.statusCode = failNext-- > 0 ? 500 : 204;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const port = (receiver.address() as { port: number }).port;
    h = await startHarness({
      // Real time: the reference verifier checks the timestamp against the wall clock.
      clock: new TestClock(Date.now()),
      configure: (home) => {
        const file = join(home, 'countersign.yaml');
        writeFileSync(
          file,
          `${readFileSync(file, 'utf8')}notifications:\n  webhooks:\n    - name: chat-ops\n      url: http://127.0.0.1:${port}/hooks\n      secret: ${secret}\n`,
        );
      },
    });
    agent = await h.addAgent('invoice-bot', { owner: 'billing' });
  });

  afterEach(async () => {
    await h.close();
    await new Promise((r) => receiver.close(r));
  });

  const review = () =>
    h.requestAccess(
      agent,
      body({
        action: 'write',
        resource: 'postgres://prod/billing/invoices',
        intent: { purpose: 'CANARY-PURPOSE-7731', task_id: 't1' },
      }),
    );

  it('K2 review.requested is signed so that the Standard Webhooks reference verifier accepts it, with a deep link', async () => {
    const { json } = await review();
    expect(await h.server.deliverNotifications()).toBe(1);
    expect(received).toHaveLength(1);
    const [msg] = received;
    const verified = new Webhook(secret).verify(msg!.body, msg!.headers as Record<string, string>) as any;
    expect(verified.type).toBe('review.requested');
    expect(verified.data).toMatchObject({
      request_id: json.id,
      status: 'pending',
      reviewer_group: 'billing-oncall',
    });
    expect(verified.data.link).toBe(`http://localhost:8787/console/#/requests/${json.id}`);
    // Another secret, a changed body or a stale timestamp fail verification.
    expect(() =>
      new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(msg!.body, msg!.headers as never),
    ).toThrow();
    expect(() =>
      new Webhook(secret).verify(msg!.body.replace('pending', 'allowed'), msg!.headers as never),
    ).toThrow();
  });

  it('K4 notifications carry ids and risk, never the agent text or a credential', async () => {
    await review();
    const allowed = await h.requestAccess(agent, body());
    await h.server.deliverNotifications();
    const all = received.map((r) => r.body).join('\n');
    expect(all).not.toContain('CANARY-PURPOSE-7731');
    expect(all).not.toContain(allowed.json.credential.access_token.split('.')[2]);
    expect(received).toHaveLength(1); // auto-allowed requests notify nobody
  });

  it('H2 a failed delivery is retried with the same webhook-id after a backoff; withdrawal sends review.decided', async () => {
    const { json } = await review();
    failNext = 1;
    expect(await h.server.deliverNotifications()).toBe(0);
    expect(await h.server.deliverNotifications()).toBe(0); // not due yet: backoff
    h.clock.advance(2);
    expect(await h.server.deliverNotifications()).toBe(1);
    expect(received).toHaveLength(2);
    expect(received[0]!.headers['webhook-id']).toBe(received[1]!.headers['webhook-id']);
    await h.call('POST', `/v1/access-requests/${json.id}/withdraw`, { agent });
    await h.server.deliverNotifications();
    const last = new Webhook(secret).verify(received[2]!.body, received[2]!.headers as never) as any;
    expect(last).toMatchObject({ type: 'review.decided', data: { status: 'withdrawn' } });
    expect(countersignCount(h.home, 'outbox WHERE delivered_at IS NULL')).toBe(0);
    const types: string[] = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) types.push(e.type);
    expect(types.filter((t) => t === 'notification.delivered')).toHaveLength(2);
  });

  it('K1 nothing inbound can approve: there is no callback endpoint', async () => {
    const { json } = await review();
    for (const path of ['/v1/webhooks', `/v1/access-requests/${json.id}/approve`, '/v1/console/approve']) {
      const res = await h.call('POST', path, {
        body: { request_id: json.id, verdict: 'approve' },
        headers: { origin: 'http://localhost:8787' },
      });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
    }
    expect((await h.server.deps.ctx.store.read((tx) => tx.getRequest(json.id)))?.status).toBe('pending');
  });
});
