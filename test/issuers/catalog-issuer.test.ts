/** Which issuer serves a resource is catalog config; an unknown one denies (invariant 4). */
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { addCatalogEntries } from './kinds.js';

describe('catalog issuer', () => {
  let h: Harness;
  afterEach(async () => h.close());

  it('INV-4 a catalog entry naming an issuer that is not configured denies with CS_ISSUER_UNKNOWN, before any review, and the instance is unready', async () => {
    h = await startHarness({
      configure: (home) =>
        addCatalogEntries(
          home,
          `  - pattern: postgres://staging/ghost/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: no-such-issuer
  - pattern: postgres://prod/ghost/*
    sensitivity: confidential
    environment: production
    owner: billing
    boundary: acme
    issuer: no-such-issuer
`,
        ),
    });
    const agent = await h.addAgent('bot', { environment: 'production' });
    const read = await h.requestAccess(agent, {
      action: 'read',
      resource: 'postgres://staging/ghost/orders',
      intent: { purpose: 'p', task_id: 't' },
    });
    expect(read.status).toBe(201);
    expect(read.json).toMatchObject({ status: 'denied', lease_id: null });
    expect(read.json.decision.error_code).toBe('CS_ISSUER_UNKNOWN');
    expect(read.json.credential).toBeUndefined();
    // Policy would send this write to billing-oncall: nobody is asked for what cannot be issued.
    const write = await h.requestAccess(agent, {
      action: 'write',
      resource: 'postgres://prod/ghost/invoices',
      intent: { purpose: 'p', task_id: 't' },
    });
    expect(write.json).toMatchObject({ status: 'denied', review: null });
    expect(write.json.decision.error_code).toBe('CS_ISSUER_UNKNOWN');
    const health = await h.call('GET', '/healthz');
    expect(health.status).toBe(503);
    expect(JSON.stringify(await health.json())).toContain('no-such-issuer');
    // Resources served by configured issuers are unaffected.
    const ok = await h.requestAccess(agent, {
      action: 'read',
      resource: 'postgres://staging/app/orders',
      intent: { purpose: 'p', task_id: 't' },
    });
    expect(ok.json.status).toBe('allowed');
  });

  it('a catalog issuer name outside the grammar refuses to load', async () => {
    await expect(
      startHarness({
        configure: (home) =>
          addCatalogEntries(
            home,
            `  - pattern: postgres://x/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: "Bad Name"
`,
          ),
      }),
    ).rejects.toMatchObject({ code: 'CS_CONFIG_INVALID' });
    h = await startHarness();
  });
});
