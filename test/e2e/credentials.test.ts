/**
 * The README's credentials tour, for real: a reviewer approves a production write with a
 * passkey in Chromium; the agent gets a PostgreSQL role on its first read (once), uses it, and
 * loses it when its task completes. Then the console's lease page lists and revokes leases and
 * shows a revocation the database does not confirm (THREATS.md C1, C5, H1, INV-3).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCatalogEntries, editConfig } from '../issuers/kinds.js';
import {
  connectAs,
  createTargetDatabases,
  type FaultyRelay,
  rolesWithPrefix,
  startRelay,
  type TargetDatabases,
} from '../support/postgres.js';
import { liveAgent } from './support/agent.js';
import { launchChromium, newReviewerSession, type ReviewerSession } from './support/browser.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

describe('credentials through review, in the console', () => {
  let live: LiveServer;
  let browser: Browser;
  let alice: ReviewerSession;
  let page: Page;
  let dbs: TargetDatabases;
  let relay: FaultyRelay;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    dbs = await createTargetDatabases();
    relay = await startRelay();
    live = await startLiveServer({
      configure: (home) => {
        editConfig(home, (c) => {
          c.issuers = {
            'pg-local': {
              kind: 'postgres_role',
              server: 'local',
              admin_url: `postgres://postgres@127.0.0.1:${relay.port}/postgres`,
              connect_host: '127.0.0.1',
              connect_port: 5432,
              role_prefix: dbs.rolePrefix,
              timeout: '5s',
            },
          };
        });
        addCatalogEntries(
          home,
          `  - pattern: postgres://local/*
    sensitivity: confidential
    environment: production
    owner: billing
    boundary: acme
    audience: postgres://local
    issuer: pg-local
`,
        );
      },
    });
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
    await relay?.close();
    await dbs?.drop();
  });

  it('C1 H1 the tour: a reviewed write gets a PostgreSQL role on the first read only, and loses it when the task completes', async () => {
    const agent = await liveAgent(live, 'spiffe://acme.dev/agent/invoice-bot', { owner: 'billing' });
    const resource = `postgres://local/${dbs.db}/billing.invoices`;
    const pending = await agent.submitAccessRequest({
      action: 'write',
      resource,
      intent: { purpose: 'Apply the credit note for BILL-1234', task_id: 'credit-note', ticket: 'BILL-1234' },
    });
    expect(pending.status).toBe('pending');
    expect(pending.review?.reviewer_group).toBe('billing-oncall');

    const vote = await alice.decide(pending.id, 'approve');
    expect(vote).toMatchObject({ status: 200, body: { status: 'allowed' } });
    // The approval committed the lease intent: nothing exists in the database yet.
    expect(await rolesWithPrefix(dbs.rolePrefix)).toEqual([]);

    // INV-3: five agent processes read at once; exactly one gets the credential.
    const reads = await Promise.all(Array.from({ length: 5 }, () => agent.getRequest(pending.id)));
    const delivered = reads.filter((r) => r.credential);
    expect(delivered).toHaveLength(1);
    const credential = delivered[0]!.credential!;
    expect(credential).toMatchObject({
      type: 'postgres_role',
      database: dbs.db,
      host: '127.0.0.1',
      port: 5432,
    });
    expect(await rolesWithPrefix(dbs.rolePrefix)).toHaveLength(1);
    expect((await agent.getRequest(pending.id)).credential).toBeUndefined();

    const session = await connectAs(credential as never);
    await session.query('INSERT INTO billing.invoices (total) VALUES (-120)');
    await session.query('UPDATE billing.invoices SET total = -125');

    const done = await agent.completeTask('credit-note');
    expect(done.revoked_leases).toEqual([delivered[0]!.lease_id]);
    expect(done.pending_revocations).toEqual([]);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    await session.end().catch(() => {});
    await expect(connectAs(credential as never)).rejects.toThrow(/does not exist/);
    expect(await rolesWithPrefix(dbs.rolePrefix)).toEqual([]);
  });

  it('C5 the console lists leases, revokes one (the role is dropped), and shows a revocation the database does not confirm', async () => {
    const agent = await liveAgent(live, 'spiffe://acme.dev/agent/report-bot', { owner: 'billing' });
    const leases: Array<{ id: string; credential: Record<string, unknown> }> = [];
    for (const task of ['one', 'two']) {
      const p = await agent.submitAccessRequest({
        action: 'write',
        resource: `postgres://local/${dbs.db}/billing.invoices`,
        intent: { purpose: `Adjust invoice ${task}`, task_id: task },
      });
      expect((await alice.decide(p.id, 'approve')).body.status).toBe('allowed');
      const read = await agent.getRequest(p.id);
      leases.push({ id: read.lease_id!, credential: read.credential as never });
    }
    expect(await rolesWithPrefix(dbs.rolePrefix)).toHaveLength(2);

    await page.goto(`${live.url}/console/#/leases`);
    const row = (id: string) => page.locator(`tr[data-lease="${id}"]`);
    await row(leases[0]!.id).waitFor({ timeout: 10_000 });
    expect(await row(leases[0]!.id).innerText()).toMatch(/postgres_role[\s\S]*active/);

    // Revoke the first from the console: the role is gone at once.
    await row(leases[0]!.id)
      .getByRole('button', { name: `Revoke lease ${leases[0]!.id}` })
      .click();
    await page
      .getByLabel('Reason (recorded in the audit log)')
      .fill('suspicious activity on the invoice table');
    await page.getByRole('button', { name: 'Revoke now' }).click();
    await expect
      .poll(() => page.getByRole('status').innerText())
      .toContain(`Lease ${leases[0]!.id} revoked.`);
    await expect(connectAs(leases[0]!.credential)).rejects.toThrow(/does not exist/);

    // The database's admin path goes down; the second revocation cannot be confirmed.
    await relay.break();
    await row(leases[1]!.id)
      .getByRole('button', { name: `Revoke lease ${leases[1]!.id}` })
      .click();
    await page.getByLabel('Reason (recorded in the audit log)').fill('end of shift');
    await page.getByRole('button', { name: 'Revoke now' }).click();
    await expect.poll(() => page.getByRole('status').innerText()).toContain('has not confirmed yet');
    await page.getByLabel('Status').selectOption('revoke_pending');
    await page.getByRole('button', { name: 'Refresh' }).click();
    await row(leases[1]!.id).waitFor();
    expect(await row(leases[1]!.id).innerText()).toMatch(/revocation pending[\s\S]*1 failed attempt/);
    expect(await page.getByRole('alert').first().innerText()).toMatch(/1 revocation is failing/);
    // Never silently dropped: healed, the reaper confirms it and the role is gone.
    await relay.heal();
    await expect
      .poll(
        async () => {
          await live.server.reapLeases();
          return rolesWithPrefix(dbs.rolePrefix);
        },
        { timeout: 15_000, interval: 1_000 },
      )
      .toEqual([]);
    const audit: string[] = [];
    for await (const e of live.server.deps.ctx.store.auditEvents()) {
      if (e.data.lease_id === leases[1]!.id) audit.push(e.type);
    }
    expect(audit).toEqual(
      expect.arrayContaining(['lease.revoke_requested', 'lease.revoke_failed', 'lease.revoked']),
    );
    // The strict CSP held and nothing threw (a 404 for the favicon is not a concern).
    expect(consoleErrors.filter((e) => /Refused to|Uncaught|TypeError/i.test(e))).toEqual([]);
  });
});
