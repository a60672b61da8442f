/**
 * The reviewer console in real Chromium: invite → enroll a passkey in the UI → the queue
 * updates live → the evidence pack shows hostile agent text inert and visible → approve with
 * the passkey → the waiting agent gets its credential and receipt. Plus THREATS.md D1, D2, D7.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveAgent } from './support/agent.js';
import { launchChromium, newReviewerSession, type ReviewerSession } from './support/browser.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

const BIN = resolve(import.meta.dirname, '../../packages/cli/bin/countersign.cjs');

const XSS = [
  '<script>window.__pwned=1</script>',
  '<img src=x onerror="window.__pwned=2">',
  '<a href="javascript:window.__pwned=3">click</a>',
  '<svg onload="window.__pwned=4"></svg>',
  '"><iframe srcdoc="<script>parent.__pwned=5</script>">',
];
const BIDI = 'approve invoice \u202Eexe.txt'; // Trojan Source (CVE-2021-42574)
const ZERO_WIDTH = 'pay\u200Bment';

describe('reviewer console in Chromium', () => {
  let live: LiveServer;
  let browser: Browser;
  let reviewer: ReviewerSession;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    live = await startLiveServer();
    browser = await launchChromium();
    reviewer = await newReviewerSession(browser, live.url);
    page = reviewer.page;
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('dialog', (d) => {
      consoleErrors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await live?.close();
  });

  it('enrolls with a one-time link, sees the review appear live, approves it with a passkey; the waiting agent gets its credential and receipt', async () => {
    const token = await live.invite('alice@acme.dev', ['billing-oncall']);
    await page.goto(`${live.url}/console/#/enroll/${token}`);
    await page.getByRole('button', { name: 'Create passkey' }).click();
    await page.waitForURL(/#\/queue/);
    await expect.poll(() => page.locator('a.row-link').count()).toBe(0);

    const agent = await liveAgent(live, 'spiffe://acme.dev/agent/invoice-bot', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
      intent: {
        purpose: `Apply credit note. ${XSS.join(' ')} ${BIDI} ${ZERO_WIDTH}`,
        task_id: 'task-7',
        ticket: 'BILL-1234',
      },
      context: {
        tool_chain: [
          { tool: 'read_email', source: 'untrusted', summary: XSS[1]! },
          { tool: 'sql_query', source: 'trusted', summary: 'SELECT total FROM invoices' },
        ],
        model_output: `I will now ${XSS[0]} approve ${BIDI}`,
      },
    });
    expect(pending.status).toBe('pending');
    const waiting = agent.getRequest(pending.id, 60);

    // Live: no reload, the row arrives over the event stream.
    await page.locator('a.row-link').first().waitFor({ timeout: 10_000 });
    await page.locator('a.row-link').first().click();
    await page.waitForURL(new RegExp(`#/requests/${pending.id}`));
    const digest = page.locator('[data-field="digest"]');
    await expect.poll(() => digest.innerText()).toContain(pending.decision.request_digest);
    // UPDATE_SCREENSHOTS=1 refreshes the README's picture; otherwise it goes to a temp file.
    const shot = process.env.UPDATE_SCREENSHOTS
      ? 'docs/images/console-request.png'
      : join(tmpdir(), 'countersign-console-request.png');
    await page.screenshot({ path: shot, fullPage: true });

    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('button', { name: 'Approve with passkey' }).click();
    await expect
      .poll(() => page.locator('.decision-result').innerText(), { timeout: 15_000 })
      .toMatch(/allowed|approved/i);

    const answer = (await waiting) as any;
    expect(answer.status).toBe('allowed');
    expect(answer.credential.access_token).toBeTruthy();
    const jwks = createLocalJWKSet(
      (await (await fetch(`${live.url}/.well-known/jwks.json`)).json()) as never,
    );
    const receipt = await jwtVerify(answer.receipt, jwks, { typ: 'countersign-receipt+jwt' });
    expect(receipt.payload.request_digest).toBe(pending.decision.request_digest);

    // Anyone can check the receipt with the CLI against the published JWKS; a forged one fails.
    const file = join(tmpdir(), `countersign-answer-${pending.id}.json`);
    writeFileSync(file, JSON.stringify(answer));
    // Asynchronously: the server under test lives in this process.
    const cli = (args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((done) =>
        execFile(process.execPath, [BIN, ...args], (error, stdout, stderr) =>
          done({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const ok = await cli(['receipt', 'verify', file, '--server', live.url]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      verdict: 'approved',
      request_digest: pending.decision.request_digest,
    });
    const [h, p, sig] = String(answer.receipt).split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), lease_id: 'lease_forged' }),
    ).toString('base64url');
    writeFileSync(file, `${h}.${forgedPayload}.${sig}`);
    const bad = await cli(['receipt', 'verify', file, '--server', live.url]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^error CS_TOKEN_INVALID: the receipt does not verify/);
  });

  it('D1 D2 hostile agent text is inert in the console and dangerous characters show as visible escapes', async () => {
    const agent = await liveAgent(live, 'invoice-bot-d', { owner: 'billing' });
    const pending = await agent.submitAccessRequest({
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
      intent: { purpose: `${XSS.join(' ')} ${BIDI} ${ZERO_WIDTH}`, task_id: 'task-d' },
      context: { model_output: XSS.join('\n') },
    });
    await page.goto(`${live.url}/console/#/requests/${pending.id}`);
    const purpose = page.locator('[data-field="purpose"]');
    await purpose.waitFor();
    const text = await purpose.innerText();
    for (const payload of XSS) expect(text).toContain(payload); // shown as text, verbatim
    expect(text).toContain('⟨U+202E⟩');
    expect(text).toContain('⟨U+200B⟩');
    expect(text).not.toContain('\u202E');
    expect(text).not.toContain('\u200B');
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    expect(
      await page
        .locator(
          '[data-field="purpose"] script, [data-field="purpose"] img, [data-field="purpose"] iframe, [data-field="purpose"] svg',
        )
        .count(),
    ).toBe(0);
    expect(consoleErrors.filter((e) => /dialog|Refused to execute/i.test(e))).toEqual([]);
  });

  it('A5 D4 every displayed claim equals the stored canonical JSON, and a long intent hides nothing', async () => {
    const agent = await liveAgent(live, 'invoice-bot-a5', { owner: 'billing' });
    const tail = ' and then DROP TABLE invoices \u202E';
    const purpose = `${'Routine reconciliation. '.repeat(165)}${tail}`; // about 4 KiB, dangerous suffix
    const pending = await agent.submitAccessRequest({
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
      intent: { purpose, task_id: 'task-a5', ticket: 'BILL-9' },
      context: { on_behalf_of: 'carol@acme.dev' },
    });
    const stored = await live.server.deps.ctx.store.read((tx) => tx.getRequest(pending.id));
    const canonical = JSON.parse(stored!.canonical);
    await page.goto(`${live.url}/console/#/requests/${pending.id}`);
    const field = (name: string) => page.locator(`[data-field="${name}"]`).innerText();
    await page.locator('[data-field="purpose"]').waitFor();
    expect(await field('agent_id')).toContain(canonical.agent.id);
    expect(await field('resource')).toContain(canonical.resource);
    expect(await field('task_id')).toContain(canonical.intent.task_id);
    expect(await field('ticket')).toContain(canonical.intent.ticket);
    expect(await field('on_behalf_of')).toContain(canonical.context.on_behalf_of);
    expect(await field('digest')).toContain(stored!.digest);
    // Long text is cut visibly, never silently: expanding shows the whole of it.
    await page
      .locator('[data-field="purpose"]')
      .getByRole('button', { name: /Show all/ })
      .click();
    const shown = await field('purpose');
    expect(shown).toContain('and then DROP TABLE invoices ⟨U+202E⟩');
    expect(shown.replace(/⟨U\+202E⟩/g, '\u202E')).toContain(purpose);
  });

  it('D7 the console cannot be framed and is served under a strict CSP', async () => {
    const res = await fetch(`${live.url}/console/`);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("require-trusted-types-for 'script'");
    const framer = await browser.newPage();
    await framer.setContent(`<iframe id="f" src="${live.url}/console/"></iframe>`);
    await framer.waitForTimeout(1000);
    const frame = framer.frames().find((f) => f !== framer.mainFrame());
    const framedText = frame
      ? await frame.evaluate(() => (globalThis as any).document.body?.innerText ?? '').catch(() => '')
      : '';
    expect(framedText).not.toContain('Countersign');
    await framer.close();
  });
});
