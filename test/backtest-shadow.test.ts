/**
 * Backtests and shadow mode (issue 8): a candidate policy set decides live traffic beside the
 * active one without enforcing anything, differences are recorded with the request; the same
 * candidate replayed over the recorded requests (`countersign policy backtest`) counts the
 * same changes; the active set replayed against itself changes nothing.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../packages/cli/src/main.js';
import { body, type Harness, startHarness, type TestAgent } from './support/harness.js';

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
    stdout += String(c);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
    stderr += String(c);
    return true;
  });
  try {
    return { code: await main(['node', 'countersign', ...args]), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** The example set, except billing's production changes need no review and docs are off limits. */
function writeCandidate(home: string): string {
  const dir = join(home, 'policies', 'candidate');
  mkdirSync(dir);
  for (const name of readdirSync(join(home, 'policies')).filter((f) => f.endsWith('.cedar')))
    cpSync(join(home, 'policies', name), join(dir, name));
  const production = join(dir, 'production.cedar');
  writeFileSync(
    production,
    readFileSync(production, 'utf8').replace('@review("billing-oncall")\npermit', '@ttl("5m")\npermit'),
  );
  writeFileSync(
    join(dir, 'zz-docs.cedar'),
    '@id("forbid-docs")\nforbid (principal, action, resource) when { resource.kind == "https" };\n',
  );
  return dir;
}

describe('shadow mode and backtests', () => {
  let h: Harness;
  let agent: TestAgent;
  let candidateDir = '';

  beforeAll(async () => {
    h = await startHarness({ configure: (home) => (candidateDir = writeCandidate(home)) });
    agent = await h.addAgent('invoice-bot', { owner: 'billing' });
  });
  afterAll(async () => h?.close());

  it('the candidate decides every request beside the active set, enforces nothing, and records only differences', async () => {
    expect(h.server.deps.policies.candidate()).not.toBeNull();
    const write = await h.requestAccess(
      agent,
      body({ action: 'write', resource: 'postgres://prod/billing/invoices' }),
    );
    expect(write.json.status).toBe('pending'); // the active set still decides
    const docs = await h.requestAccess(agent, body({ resource: 'https://docs.acme.dev/runbook' }));
    expect(docs.json.status).toBe('allowed');
    const routine = await h.requestAccess(agent, body());
    expect(routine.json.status).toBe('allowed');

    const shadow = await h.server.deps.ctx.store.read((tx) => tx.listShadowDecisions(0, 10));
    expect(shadow.map((s) => [s.requestId, `${s.activeOutcome}->${s.candidateOutcome}`]).sort()).toEqual(
      [
        [write.json.id, 'review->allow'],
        [docs.json.id, 'allow->deny'],
      ].sort(),
    );
    const w = shadow.find((s) => s.requestId === write.json.id)!;
    expect(w).toMatchObject({
      activeGroup: 'billing-oncall',
      candidateGroup: null,
      candidatePolicies: ['review-production-change-billing'],
      activeVersion: h.server.deps.ctx.policy().version,
      candidateVersion: h.server.deps.policies.candidate()!.version,
    });
  });

  it('countersign policy backtest replays the recorded requests: the same changes, with examples', async () => {
    const backtest = (...format: string[]) =>
      cli(['policy', 'backtest', '--candidate', candidateDir, '--since', '90d', ...format, '--dir', h.home]);
    const r = await backtest('--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      replayed: 3,
      unchanged: 1,
      skipped: 0,
      reviews_before: 1,
      reviews_after: 0,
      changes: { 'review->allow': 1, 'allow->deny': 1 },
    });
    expect(report.examples['review->allow'][0]).toMatchObject({
      agent_id: 'invoice-bot',
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
      from_group: 'billing-oncall',
      to_group: null,
      recorded_status: 'pending',
    });

    const text = await backtest();
    expect(text.stdout).toContain('replayed 3 requests (0 skipped): 1 unchanged');
    expect(text.stdout).toMatch(
      /review -> allow\s+1\n\s+req_\S+ invoice-bot write postgres:\/\/prod\/billing\/invoices \[billing-oncall -> -\]/,
    );
  });

  it('the active set replayed against its own recorded decisions changes nothing', async () => {
    const r = await cli([
      'policy',
      'backtest',
      '--candidate',
      join(h.home, 'policies'),
      '--since',
      '90d',
      '--json',
      '--dir',
      h.home,
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ replayed: 3, unchanged: 3, changes: {} });
  });
});
