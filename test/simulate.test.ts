/**
 * `npm run simulate` at a small size: the traffic generator runs end to end (agents, passkey
 * reviewers, mining, adoption with the admin's passkey, a second phase) and proves its two
 * claims: fewer requests reach a person after adoption, and no adopted suggestion allows a
 * hostile request. The full-size figures come from `npm run simulate` itself.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('npm run simulate (small)', () => {
  it('fewer requests reach a person after adopting the suggestions, and none of them allows a hostile request', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'scripts/simulate.ts', '--requests', '250', '--seed', '3', '--json'],
      { cwd: resolve(import.meta.dirname, '..'), encoding: 'utf8', timeout: 150_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.adopted).toBe(report.suggested_policies);
    expect(report.adopted).toBeGreaterThan(0);
    expect(report.after.human_share).toBeLessThan(report.before.human_share);
    expect(report.before.other_errors + report.after.other_errors).toBe(0);
    expect(report.hostile.replayed_against_final_set).toBeGreaterThan(0);
    expect(report.hostile.allowed_by_suggestion).toBe(0);
    expect(report.hostile.phase2_allowed_by_suggestion).toBe(0);
  }, 180_000);
});
