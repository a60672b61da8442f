/** C4 / I7 / L1: credential bytes never land in the audit chain, the database file or error bodies. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness, type TestAgent } from './support/harness.js';

describe('no secret at rest or in errors', () => {
  let h: Harness;
  let agent: TestAgent;
  beforeEach(async () => {
    h = await startHarness();
    await h.server.recordStart();
    agent = await h.addAgent('spiffe://acme.dev/agent/canary');
  });
  afterEach(async () => h.close());

  it('C4 the issued access token appears in no audit event, no database page and no error body', async () => {
    const { json } = await h.requestAccess(agent, body());
    const token: string = json.credential.access_token;
    const signature = token.split('.')[2]!;
    expect(signature.length).toBeGreaterThan(40);

    const events = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) events.push(e);
    const chain = JSON.stringify(events);
    expect(chain).toContain('lease.issued');
    expect(chain).toContain(json.lease_id); // the id and fingerprint are there ...
    expect(chain).not.toContain(signature); // ... the credential is not

    // Every byte SQLite wrote: the main file, the WAL, the shared memory.
    for (const file of readdirSync(h.home).filter((f) => f.startsWith('countersign.db'))) {
      const bytes = readFileSync(join(h.home, file)).toString('latin1');
      expect(bytes.includes(signature), file).toBe(false);
    }

    // Presenting the credential where it does not belong must not echo it back.
    const misuse = await h.call('POST', '/v1/access-requests', { token, body: body() });
    expect(misuse.status).toBe(401);
    expect(await misuse.text()).not.toContain(signature);
  });

  it('I7 the policy load is audited with its version, and the agent key only by thumbprint', async () => {
    const events = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) events.push(e);
    const loaded = events.find((e) => e.type === 'policy.loaded');
    expect(loaded?.data.policy_version).toBe(h.server.deps.ctx.policy().version);
    const added = events.find((e) => e.type === 'agent.added');
    expect(added?.data.key_thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(events)).not.toContain(String(agent.privateJwk.d));
  });
});
