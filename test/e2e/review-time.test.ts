/** Time and policy-version bounds on approvals (THREATS.md A4, A11, G4), with real passkeys. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getAccessRequest } from '@countersign/core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from '../support/harness.js';
import { liveAgent, PROD_WRITE } from './support/agent.js';
import { launchChromium, newReviewerSession, type ReviewerSession } from './support/browser.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

describe('approval time and policy bounds', () => {
  const clock = new TestClock(Date.now());
  let live: LiveServer;
  let browser: Browser;
  let alice: ReviewerSession;

  beforeAll(async () => {
    live = await startLiveServer({ clock });
    browser = await launchChromium();
    alice = await newReviewerSession(browser, live.url);
    expect((await alice.enroll(await live.invite('alice@acme.dev', ['billing-oncall']))).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await live?.close();
  });

  it('A4 after a policy change the open review cannot be approved under the old version: never a silent allow', async () => {
    const agent = await liveAgent(live, 'bot-a4', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a4' },
    });
    // A second instance on the same data, with a changed policy set (a looser one).
    const file = join(live.home, 'policies', 'production.cedar');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('needs the billing on-call', 'needs the billing on-call (v2)'),
    );
    const next = await startLiveServer({ home: live.home, clock });
    try {
      expect(next.server.deps.ctx.policy().version).not.toBe(pending.decision.policy_version);
      await alice.page.goto(`${next.url}/healthz/live`);
      expect((await alice.login()).status).toBe(200);
      const vote = await alice.decide(pending.id, 'approve');
      expect(vote.status).toBe(409);
      expect(vote.body.error.code).toBe('CS_POLICY_CHANGED');
      expect(((await agent.getRequest(pending.id)) as any).status).toBe('pending');
    } finally {
      await next.close({ keepHome: true });
      await alice.page.goto(`${live.url}/healthz/live`);
    }
  });
  it('A11 R9 an approval after the deadline is refused and the agent reads expired (a deny)', async () => {
    const agent = await liveAgent(live, 'bot-a11', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a11' },
    });
    // The reviewer starts the ceremony in time ...
    const start = await alice.api('POST', `/v1/console/requests/${pending.id}/decision/options`, {
      verdict: 'approve',
    });
    expect(start.status).toBe(200);
    const response = await alice.assert(start.body.options);
    // ... and answers after the deadline: the same conditional update refuses it.
    clock.advance(15 * 60 + 1);
    const late = await alice.api('POST', `/v1/console/requests/${pending.id}/decision`, {
      verdict: 'approve',
      challenge_id: start.body.challenge_id,
      response,
    });
    expect(late.status).toBeGreaterThanOrEqual(400);
    expect(['CS_REVIEW_CLOSED', 'CS_ASSERTION_INVALID']).toContain(late.body.error.code);
    // (The agent's own assertions would be stale on the moved server clock: read as the domain does.)
    const read = await getAccessRequest({
      ctx: live.server.deps.ctx,
      input: { agentId: 'bot-a11', requestId: pending.id },
    });
    expect(read.status).toBe('expired');
    expect(read.leaseId).toBeNull();
    const options = await alice.api('POST', `/v1/console/requests/${pending.id}/decision/options`, {
      verdict: 'approve',
    });
    expect(options.body.error.code).toBe('CS_REVIEW_CLOSED');
  });
});
