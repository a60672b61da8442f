/**
 * Reviewer load in real Chromium (issue 8, OWASP Agentic T10): requests from two agents, a
 * vote seconds after opening the evidence and a vote without opening it; the dashboard shows
 * the share that reached a person, the open queue, the rubber-stamp signals and SVG charts
 * under the console's CSP, and /metrics says the same.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOutOfHours } from '@countersign/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveAgent, PROD_WRITE } from './support/agent.js';
import { launchChromium, newReviewerSession, type ReviewerSession } from './support/browser.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

describe('reviewer-load dashboard in Chromium', () => {
  let live: LiveServer;
  let browser: Browser;
  let alice: ReviewerSession;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    live = await startLiveServer();
    browser = await launchChromium();
    alice = await newReviewerSession(browser, live.url);
    page = alice.page;
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    expect((await alice.enroll(await live.invite('alice@acme.dev', ['billing-oncall']))).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await live?.close();
  });

  it('shows where the human load comes from and flags rubber-stamp votes; /metrics agrees', async () => {
    const busy = await liveAgent(live, 'invoice-bot', { owner: 'billing' });
    const quiet = await liveAgent(live, 'report-bot', { owner: 'billing' });
    const read = {
      action: 'read',
      resource: 'postgres://staging/app/orders',
      intent: { purpose: 'r', task_id: 't' },
    };
    for (let i = 0; i < 4; i++) expect((await busy.submitAccessRequest(read)).status).toBe('allowed');
    for (let i = 0; i < 2; i++) expect((await quiet.submitAccessRequest(read)).status).toBe('allowed');
    const reviews = [];
    for (let i = 0; i < 3; i++)
      reviews.push(
        await busy.submitAccessRequest({ ...PROD_WRITE, intent: { ...PROD_WRITE.intent, task_id: `w${i}` } }),
      );
    reviews.push(await quiet.submitAccessRequest(PROD_WRITE));
    for (const r of reviews) expect(r.status).toBe('pending');

    // Opened, then approved at once: a quick vote. Approved without opening: an unopened vote.
    expect((await alice.api('GET', `/v1/console/requests/${reviews[0]!.id}`)).status).toBe(200);
    expect((await alice.decide(reviews[0]!.id, 'approve')).body.status).toBe('allowed');
    expect((await alice.decide(reviews[1]!.id, 'deny')).body.status).toBe('denied');

    // Only the console counts (the set-up page may log a favicon 404).
    consoleErrors.length = 0;
    await page.goto(`${live.url}/console/#/load`);
    await page.getByRole('heading', { name: 'Reviewer load' }).waitFor();
    const kpi = (name: string) => page.locator(`[data-kpi="${name}"]`).innerText();
    await expect.poll(() => kpi('requests')).toBe('10');
    expect(await kpi('human-share')).toMatch(/^40%\s*\(4\)$/);
    expect(await kpi('open')).toBe('2');
    expect(await kpi('rubber-stamp')).toMatch(/^2\s*of 2 votes$/);

    const group = page.locator('[data-table="groups"] tr[data-group="billing-oncall"] td');
    expect(await group.allInnerTexts()).toEqual([
      'billing-oncall',
      '2',
      expect.any(String),
      expect.stringMatching(/ s · /),
      '50%',
      '0',
      '1 · 1',
      // Both votes were cast just now: out of hours or not, by the wall clock.
      isOutOfHours(Date.now()) ? '2' : '0',
    ]);
    const row = page.locator('[data-table="reviewers"] tr[data-reviewer="alice@acme.dev"] td');
    expect((await row.allInnerTexts()).slice(1, 4)).toEqual(['2', '2', '50%']);

    // Charts are SVG with text equivalents; the escalation chart names both agents.
    const charts = page.locator('figure.chart svg[role="img"]');
    expect(await charts.count()).toBe(4);
    const escalation = page.locator('figure.chart', { hasText: 'Escalation rate by agent' });
    expect(await escalation.locator('desc').textContent()).toBe('invoice-bot: 43%; report-bot: 33%');
    expect(await escalation.locator('[data-bar="invoice-bot"] rect').count()).toBe(1);

    const shot = join(tmpdir(), 'countersign-console-load.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(consoleErrors).toEqual([]);

    const metrics = await (await fetch(`${live.url}/metrics`)).text();
    expect(metrics).toContain('countersign_review_queue_depth{group="billing-oncall"} 2');
    expect(metrics).toMatch(/countersign_reviewer_votes\{reviewer="[^"]+",signal="quick"\} 1/);
    expect(metrics).toMatch(/countersign_reviewer_votes\{reviewer="[^"]+",signal="unopened"\} 1/);
    expect(metrics).toContain('countersign_agent_pending_reviews{agent="invoice-bot"} 1');
    expect(metrics).toMatch(/countersign_agent_escalation_rate\{agent="invoice-bot"\} 0\.428/);
  }, 120_000);
});
