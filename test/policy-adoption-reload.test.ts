/**
 * The in-process reload after an adoption (deps.policies.reload) reports the files in the
 * policy directory as in force only when they loaded, even when the poll read them first.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './support/harness.js';

describe('reload after adoption', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it('throws CS_POLICY_ERROR when the poll already refused the same files', async () => {
    const before = h.server.deps.ctx.policy().version;
    writeFileSync(join(h.home, 'policies', 'zz-broken.cedar'), 'permit (principal, action, resource) when {');
    expect(await h.server.reloadPolicies()).toBe('refused'); // the poll got there first
    await expect(h.server.deps.policies.reload()).rejects.toMatchObject({ code: 'CS_POLICY_ERROR' });
    expect(h.server.deps.ctx.policy().version).toBe(before);
  });
});
