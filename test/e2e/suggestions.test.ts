/**
 * Suggested policies in real Chromium with real passkeys (issue 8): five approvals of one
 * routine production write become a suggested permit with its evidence; a pattern a reviewer
 * once denied is never suggested; only a policy admin's passkey assertion over the exact text
 * adopts it (audited), after which the running engine allows the routine request at once and
 * still sends a riskier variant to a person. The console's Policies page shows it.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveAgent, PROD_WRITE } from './support/agent.js';
import { launchChromium, newReviewerSession, type ReviewerSession } from './support/browser.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

describe('suggested policies, adopted with a passkey', () => {
  let live: LiveServer;
  let browser: Browser;
  let alice: ReviewerSession; // reviewer only
  let pat: ReviewerSession; // reviewer and policy admin
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    live = await startLiveServer();
    browser = await launchChromium();
    alice = await newReviewerSession(browser, live.url);
    pat = await newReviewerSession(browser, live.url);
    pat.page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    expect((await alice.enroll(await live.invite('alice@acme.dev', ['billing-oncall']))).status).toBe(200);
    expect(
      (await pat.enroll(await live.invite('pat@acme.dev', ['billing-oncall', 'policy-admins']))).status,
    ).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await live?.close();
  });

  it('mines, proves, and adopts only with an admin passkey; the engine picks it up at once', async () => {
    const bot = await liveAgent(live, 'invoice-bot', { owner: 'billing' });
    const write = (i: number) => ({ ...PROD_WRITE, intent: { ...PROD_WRITE.intent, task_id: `t${i}` } });
    for (let i = 0; i < 5; i++) {
      const r = await bot.submitAccessRequest(write(i));
      expect(r.status).toBe('pending');
      expect((await alice.decide(r.id, 'approve')).body.status).toBe('allowed');
    }
    // Another pattern: approved five times too, but denied once: never suggested.
    const other = { ...PROD_WRITE, resource: 'postgres://prod/billing/refunds' };
    for (let i = 0; i < 6; i++) {
      const r = await bot.submitAccessRequest({ ...other, intent: { ...other.intent, task_id: `o${i}` } });
      expect((await alice.decide(r.id, i === 3 ? 'deny' : 'approve')).status).toBe(200);
    }

    const list = await alice.api('GET', '/v1/console/suggestions');
    expect(list.status).toBe(200);
    expect(list.body.can_adopt).toBe(false);
    expect(list.body.items).toHaveLength(1);
    const s = list.body.items[0];
    expect(s).toMatchObject({
      agent_id: 'invoice-bot',
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
      reviewer_group: 'billing-oncall',
      approvals: 5,
      waives: ['review-production-change-billing'],
      evidence: { reviews_spared: 5, other_changes: 0, allows_denied: 0 },
    });
    expect(s.text).toContain('principal == Countersign::Agent::"invoice-bot"');
    expect(s.text).toContain('resource == Countersign::Resource::"postgres://prod/billing/invoices"');

    // A reviewer who is not a policy admin cannot even get a challenge.
    const refused = await alice.api('POST', `/v1/console/suggestions/${s.id}/adopt/options`, {
      text_sha256: s.text_sha256,
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('CS_NOT_ELIGIBLE');
    // Nothing is adopted by itself: the same routine request still waits for a person.
    expect((await bot.submitAccessRequest(write(100))).status).toBe('pending');

    // The admin adopts it in the console: the Policies page, the text, the passkey.
    consoleErrors.length = 0; // only the console counts (the set-up page may log a favicon 404)
    await pat.page.goto(`${live.url}/console/#/policies`);
    const card = pat.page.locator(`[data-suggestion="${s.id}"]`);
    await card.waitFor();
    expect(await card.locator('pre').innerText()).toBe(s.text.trimEnd());
    expect(await card.locator('[data-field="evidence"]').innerText()).toMatch(
      // The five approved and the one still waiting (write 100) would not have needed a person.
      /5 approvals.*6 reviews spared.*allows nothing a reviewer denied \(0\)/s,
    );
    await pat.page.screenshot({ path: join(tmpdir(), 'countersign-console-policies.png'), fullPage: true });
    await card.getByRole('button', { name: /Adopt with passkey/ }).click();
    await pat.page.locator('[role="status"]', { hasText: 'Adopted' }).waitFor({ timeout: 15_000 });
    expect(consoleErrors).toEqual([]);

    // The running engine allows the routine request now, under a new policy version.
    const after = await bot.submitAccessRequest(write(101));
    expect(after.status).toBe('allowed');
    // A riskier variant (untrusted input in the tool chain) is not what people approved.
    const tainted = await bot.submitAccessRequest({
      ...write(102),
      context: { tool_chain: [{ tool: 'web_fetch', summary: 'fetched a page' }] },
    });
    expect(tainted.status).toBe('pending');

    const events = [];
    for await (const e of live.server.deps.ctx.store.auditEvents()) events.push(e);
    const adopted = events.filter((e) => e.type === 'policy.adopted');
    expect(adopted).toHaveLength(1);
    expect(adopted[0]!.data).toMatchObject({
      policy_id: s.id,
      text_sha256: s.text_sha256,
      evidence: { approvals: 5, reviews_spared: 6, allows_denied: 0 },
    });
    expect(adopted[0]!.actor.type).toBe('reviewer');
    const adoptedAt = events.indexOf(adopted[0]!);
    expect(events.slice(adoptedAt).some((e) => e.type === 'policy.loaded')).toBe(true);
    // Adopted: it is no longer suggested.
    expect((await pat.api('GET', '/v1/console/suggestions')).body.items).toEqual([]);
  }, 180_000);
});
