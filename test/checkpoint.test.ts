import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness, type TestAgent } from './support/harness.js';

describe('the checkpoint end to end on SQLite', () => {
  let h: Harness;
  let agent: TestAgent;
  beforeEach(async () => {
    h = await startHarness();
    agent = await h.addAgent('spiffe://acme.dev/agent/invoice-bot', { owner: 'billing' });
  });
  afterEach(async () => h.close());

  it('allows a routine read and returns a credential', async () => {
    const { status, json } = await h.requestAccess(agent, body());
    expect(status).toBe(201);
    expect(json.status).toBe('allowed');
    expect(json.decision.outcome).toBe('allow');
    expect(json.credential.type).toBe('access_token');
    expect(json.credential.token_type).toBe('Bearer');
    expect(json.decision.request_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('denies a key export by another team', async () => {
    const { status, json } = await h.requestAccess(
      agent,
      body({ action: 'export', resource: 'secret://kms/prod-signing-key' }),
    );
    expect(status).toBe(201);
    expect(json.status).toBe('denied');
    expect(json.credential).toBeUndefined();
    expect(json.decision.determining_policies.map((p: { id: string }) => p.id)).toContain(
      'forbid-secret-export-non-owner',
    );
  });

  it('sends a production write to billing-oncall', async () => {
    const { json } = await h.requestAccess(
      agent,
      body({ action: 'write', resource: 'postgres://prod/billing/invoices' }),
    );
    expect(json.status).toBe('pending');
    expect(json.review.reviewer_group).toBe('billing-oncall');
    expect(json.credential).toBeUndefined();
  });

  it('sends a cross-boundary read to data-governance', async () => {
    const { json } = await h.requestAccess(agent, body({ resource: 's3://partner-acme/shared/q3.csv' }));
    expect(json.status).toBe('pending');
    expect(json.review.reviewer_group).toBe('data-governance');
  });
});
