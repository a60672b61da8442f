/**
 * Human review through the real API with real passkeys (Chromium's virtual authenticator):
 * the attacks of THREATS.md group A, each named after its id.
 */

import { removeReviewer } from '@countersign/core';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../support/db.js';
import { liveAgent, PROD_WRITE } from './support/agent.js';
import { launchChromium, newReviewerSession, type ReviewerSession } from './support/browser.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

describe('human review with passkeys (API level, real Chromium authenticator)', () => {
  let live: LiveServer;
  let browser: Browser;
  let alice: ReviewerSession; // billing-oncall
  let bob: ReviewerSession; // billing-oncall
  let mallory: ReviewerSession; // another group

  beforeAll(async () => {
    live = await startLiveServer();
    browser = await launchChromium();
    alice = await newReviewerSession(browser, live.url);
    bob = await newReviewerSession(browser, live.url);
    mallory = await newReviewerSession(browser, live.url);
    expect(
      (await alice.enroll(await live.invite('alice@acme.dev', ['billing-oncall', 'security']))).status,
    ).toBe(200);
    expect((await bob.enroll(await live.invite('bob@acme.dev', ['billing-oncall', 'security']))).status).toBe(
      200,
    );
    expect((await mallory.enroll(await live.invite('mallory@acme.dev', ['data-governance']))).status).toBe(
      200,
    );
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await live?.close();
  });

  it('an approval issues the lease, wakes the waiting agent at once, and hands it a verifiable receipt', async () => {
    const agent = await liveAgent(live, 'invoice-bot-1', { owner: 'billing' });
    const pending = await agent.submitAccessRequest(PROD_WRITE);
    expect(pending.status).toBe('pending');
    const waiting = agent.getRequest(pending.id, 30);
    const started = Date.now();
    const vote = await alice.decide(pending.id, 'approve');
    expect(vote).toMatchObject({
      status: 200,
      body: { status: 'allowed', approvals_given: 1, approvals_needed: 1 },
    });
    const answer = (await waiting) as any;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.status).toBe('allowed');
    expect(answer.credential.type).toBe('access_token');
    const jwks = createLocalJWKSet(
      (await (await fetch(`${live.url}/.well-known/jwks.json`)).json()) as never,
    );
    const { payload } = await jwtVerify(answer.receipt, jwks, {
      typ: 'countersign-receipt+jwt',
      issuer: live.url,
    });
    expect(payload.request_digest).toBe(pending.decision.request_digest);
    expect((payload.approvers as Array<{ reviewer_id: string }>).length).toBe(1);
    const token = await jwtVerify(answer.credential.access_token, jwks, { typ: 'at+jwt' });
    expect(token.payload.jti).toBe(answer.lease_id);
    // The credential is handed over once.
    const again = (await agent.getRequest(pending.id)) as any;
    expect(again.credential).toBeUndefined();
    expect(again.receipt).toBe(answer.receipt);
  });

  it('A1 a used decision challenge and assertion cannot be replayed, even concurrently', async () => {
    const agent = await liveAgent(live, 'invoice-bot-a1', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a1' },
    });
    const start = await alice.api('POST', `/v1/console/requests/${pending.id}/decision/options`, {
      verdict: 'deny',
    });
    const response = await alice.assert(start.body.options);
    const body = { verdict: 'deny', challenge_id: start.body.challenge_id, response };
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        alice.api('POST', `/v1/console/requests/${pending.id}/decision`, body),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200))
      expect(['CS_ASSERTION_INVALID', 'CS_REVIEW_CLOSED', 'CS_ALREADY_VOTED']).toContain(r.body.error.code);
    expect(((await agent.getRequest(pending.id)) as any).status).toBe('denied');
  });

  it('A2 an assertion made for request X is refused for request Y', async () => {
    const agent = await liveAgent(live, 'invoice-bot-a2', { owner: 'billing' });
    const x = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a2-x' },
    });
    const y = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a2-y' },
    });
    const start = await alice.api('POST', `/v1/console/requests/${x.id}/decision/options`, {
      verdict: 'approve',
    });
    const response = await alice.assert(start.body.options);
    const swapped = await alice.api('POST', `/v1/console/requests/${y.id}/decision`, {
      verdict: 'approve',
      challenge_id: start.body.challenge_id,
      response,
    });
    expect(swapped.status).toBe(400);
    expect(swapped.body.error.code).toBe('CS_ASSERTION_INVALID');
    // Same request, other verdict: refused too (the verdict is in the challenge).
    const flipped = await alice.api('POST', `/v1/console/requests/${x.id}/decision`, {
      verdict: 'deny',
      challenge_id: start.body.challenge_id,
      response,
    });
    expect(flipped.body.error.code).toBe('CS_ASSERTION_INVALID');
    expect(((await agent.getRequest(y.id)) as any).status).toBe('pending');
  });

  it('A3 a request changed in the database after the reviewer saw it cannot be approved', async () => {
    const agent = await liveAgent(live, 'invoice-bot-a3', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a3' },
    });
    const start = await alice.api('POST', `/v1/console/requests/${pending.id}/decision/options`, {
      verdict: 'approve',
    });
    const response = await alice.assert(start.body.options);
    // A DB writer swaps the resource and the digest behind the reviewer's back.
    const db = openDb(live.home);
    db.prepare('UPDATE access_requests SET resource = ?, digest = ? WHERE id = ?').run(
      'postgres://prod/billing/everything',
      'sha256:0000000000000000000000000000000000000000000000000000000000000000',
      pending.id,
    );
    db.close();
    const vote = await alice.api('POST', `/v1/console/requests/${pending.id}/decision`, {
      verdict: 'approve',
      challenge_id: start.body.challenge_id,
      response,
    });
    expect(vote.status).toBe(400);
    expect(vote.body.error.code).toBe('CS_ASSERTION_INVALID');
    expect(((await agent.getRequest(pending.id)) as any).status).toBe('pending');
  });

  it('A6 INV-6 reviewers outside the group, the on-behalf-of user, and the owner under @separation are refused', async () => {
    const agent = await liveAgent(live, 'invoice-bot-a6', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a6' },
    });
    const outsider = await mallory.decide(pending.id, 'approve');
    expect(outsider.status).toBe(403);
    expect(outsider.body.error.code).toBe('CS_NOT_ELIGIBLE');

    const onBehalf = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a6-obo' },
      context: { on_behalf_of: 'alice@acme.dev' },
    });
    const self = await alice.decide(onBehalf.id, 'approve');
    expect(self.status).toBe(403);
    expect(self.body.error.message).toMatch(/on your behalf/);

    // Secret export by the owning team needs two security approvals and @separation("owner").
    const keyBot = await liveAgent(live, 'key-bot-a6', { owner: 'security' });
    const exportReq = await keyBot.submitAccessRequest({
      action: 'export',
      resource: 'secret://kms/prod-signing-key',
      intent: { purpose: 'rotate', task_id: 'a6-export' },
    });
    expect(exportReq.status).toBe('pending');
    const owner = await alice.decide(exportReq.id, 'approve'); // alice is in group security = the agent's owner team
    expect(owner.status).toBe(403);
    expect(owner.body.error.message).toMatch(/separates duties/);
  });

  it('A7 2-of-N: one reviewer twice (even concurrently) is one vote; two people approve it exactly once', async () => {
    const agent = await liveAgent(live, 'platform-bot-a7', { owner: 'platform' });
    const pending = await agent.submitAccessRequest({
      action: 'admin',
      resource: 'postgres://prod/app/settings',
      intent: { purpose: 'raise connection limit', task_id: 'a7' },
    });
    expect(pending.status).toBe('pending');
    expect(pending.decision.obligations.approvals).toBe(2);
    // platform-oncall: enroll two fresh reviewers for it.
    const carol = await newReviewerSession(browser, live.url);
    const dave = await newReviewerSession(browser, live.url);
    await carol.enroll(await live.invite('carol@acme.dev', ['platform-oncall']));
    await dave.enroll(await live.invite('dave@acme.dev', ['platform-oncall']));
    const twice = await Promise.all([
      carol.decide(pending.id, 'approve'),
      carol.decide(pending.id, 'approve'),
    ]);
    expect(twice.filter((r) => r.status === 200)).toHaveLength(1);
    expect(twice.find((r) => r.status !== 200)?.body.error.code).toBe('CS_ALREADY_VOTED');
    expect(((await agent.getRequest(pending.id)) as any).status).toBe('pending');
    const second = await dave.decide(pending.id, 'approve');
    expect(second.body).toMatchObject({ status: 'allowed', approvals_given: 2, approvals_needed: 2 });
    const after = await carol.decide(pending.id, 'deny');
    expect(after.body.error.code).toBe('CS_REVIEW_CLOSED');
    await carol.close();
    await dave.close();
  });

  it('A9 a stolen session cookie reads the queue but cannot vote without the passkey; a cross-origin POST is refused', async () => {
    const agent = await liveAgent(live, 'invoice-bot-a9', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a9' },
    });
    const cookies = await alice.context.cookies();
    const session = cookies.find((c) => c.name === 'cs_session')!;
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe('Strict');
    const stolen = `cs_session=${session.value}`;
    const queue = await fetch(`${live.url}/v1/console/reviews`, { headers: { cookie: stolen } });
    expect(queue.status).toBe(200);
    // Same origin, cookie, but no assertion: nothing to vote with.
    const start = await fetch(`${live.url}/v1/console/requests/${pending.id}/decision/options`, {
      method: 'POST',
      headers: { cookie: stolen, origin: live.url, 'content-type': 'application/json' },
      body: JSON.stringify({ verdict: 'approve' }),
    });
    const { challenge_id } = (await start.json()) as { challenge_id: string };
    const forged = await fetch(`${live.url}/v1/console/requests/${pending.id}/decision`, {
      method: 'POST',
      headers: { cookie: stolen, origin: live.url, 'content-type': 'application/json' },
      body: JSON.stringify({
        verdict: 'approve',
        challenge_id,
        response: { id: 'x', rawId: 'x', type: 'public-key', response: {} },
      }),
    });
    expect(forged.status).toBe(400);
    const csrf = await fetch(`${live.url}/v1/console/requests/${pending.id}/decision/options`, {
      method: 'POST',
      headers: { cookie: stolen, origin: 'https://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ verdict: 'approve' }),
    });
    expect(csrf.status).toBe(403);
    expect(((await csrf.json()) as any).error.code).toBe('CS_ORIGIN_REJECTED');
    expect(((await agent.getRequest(pending.id)) as any).status).toBe('pending');
  });

  it('A10 a passkey registered to another reviewer cannot vote for this one', async () => {
    const agent = await liveAgent(live, 'invoice-bot-a10', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'a10' },
    });
    // Bob asks for options; Alice's authenticator answers (allowCredentials lists Bob's keys only,
    // so we ask Alice's browser with the list removed).
    const start = await bob.api('POST', `/v1/console/requests/${pending.id}/decision/options`, {
      verdict: 'approve',
    });
    const response = await alice.assert({ ...start.body.options, allowCredentials: [] });
    const vote = await bob.api('POST', `/v1/console/requests/${pending.id}/decision`, {
      verdict: 'approve',
      challenge_id: start.body.challenge_id,
      response,
    });
    expect(vote.status).toBe(400);
    expect(vote.body.error.code).toBe('CS_ASSERTION_INVALID');
  });

  it('A8 a reviewer removed after voting no longer counts toward quorum at finalisation', async () => {
    const agent = await liveAgent(live, 'platform-bot-a8', { owner: 'platform' });
    const pending = await agent.submitAccessRequest({
      action: 'admin',
      resource: 'postgres://prod/app/settings',
      intent: { purpose: 'raise connection limit', task_id: 'a8' },
    });
    const erin = await newReviewerSession(browser, live.url);
    const frank = await newReviewerSession(browser, live.url);
    await erin.enroll(await live.invite('erin@acme.dev', ['platform-oncall']));
    await frank.enroll(await live.invite('frank@acme.dev', ['platform-oncall']));
    expect((await erin.decide(pending.id, 'approve')).body.status).toBe('pending');
    await removeReviewer({
      ctx: live.server.deps.ctx,
      actor: { type: 'operator', id: 'test' },
      input: { email: 'erin@acme.dev' },
    });
    const second = await frank.decide(pending.id, 'approve');
    expect(second.body).toMatchObject({ status: 'pending', approvals_given: 1, approvals_needed: 2 });
    // Erin's session ended with her removal.
    expect((await erin.api('GET', '/v1/console/me')).status).toBe(401);
    await erin.close();
    await frank.close();
  });

  it('withdrawn and decided requests refuse votes with CS_REVIEW_CLOSED', async () => {
    const agent = await liveAgent(live, 'invoice-bot-closed', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      ...PROD_WRITE,
      intent: { ...PROD_WRITE.intent, task_id: 'closed' },
    });
    await agent.withdraw(pending.id);
    const vote = await alice.decide(pending.id, 'approve');
    expect(vote.status).toBe(409);
    expect(vote.body.error.code).toBe('CS_REVIEW_CLOSED');
  });

  it('every enrollment, login, vote, decision and receipt is in the audit chain, which verifies', async () => {
    expect((await alice.login()).status).toBe(200);
    const audit = await alice.api('GET', '/v1/console/audit');
    expect(audit.body.ok).toBe(true);
    const types = new Set<string>();
    for await (const e of live.server.deps.ctx.store.auditEvents()) types.add(e.type);
    for (const t of [
      'reviewer.invited',
      'reviewer.enrolled',
      'reviewer.login',
      'review.vote',
      'review.decided',
      'receipt.issued',
      'lease.delivered',
    ]) {
      expect(types, t).toContain(t);
    }
  });
});
