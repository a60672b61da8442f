/**
 * `countersign policy test`: the example set passes its own tests through the real CLI
 * process, and a wrong expectation fails with a non-zero exit and a line naming the case.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../packages/cli/src/main.js';

const BIN = resolve(import.meta.dirname, '../packages/cli/bin/countersign.cjs');
const EXAMPLES = resolve(import.meta.dirname, '../examples');

function cli(args: string[], home: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, COUNTERSIGN_HOME: home },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same command in this process (a spawned CLI costs seconds of tsx start-up each). */
async function inProcess(args: string[], home: string) {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'countersign', ...args, '--dir', home]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('countersign policy test', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'countersign-policy-test-'));
  const noHome = join(tmp, 'no-home');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the example policies pass the tests they ship with (the real CLI process)', () => {
    const r = cli(['policy', 'test', '--policies', join(EXAMPLES, 'policies')], noHome);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('ok   examples.yaml: ')).length).toBeGreaterThanOrEqual(15);
    expect(lines.at(-1)).toMatch(/^\d+ passed, 0 failed \(\d+ cases, policy version sha256:[0-9a-f]{64}\)$/);
  });

  it('a case whose expectation the policies contradict fails the run (exit 1) and says why', async () => {
    const dir = join(tmp, 'failing');
    cpSync(join(EXAMPLES, 'policies', 'tests'), dir, { recursive: true });
    writeFileSync(
      join(dir, 'wrong.yaml'),
      [
        'agent: { id: writer, owner: billing }',
        'cases:',
        '  - name: someone hoped production billing writes were routine',
        '    request: { action: write, resource: postgres://prod/billing/invoices }',
        '    expect: { outcome: allow, review_group: null }',
        '  - name: the secret export needs two approvals, not one',
        '    request: { agent: { owner: security }, action: export, resource: secret://kms/k }',
        '    expect: { outcome: review, obligations: { approvals: 1 } }',
      ].join('\n'),
    );
    const r = await inProcess(
      ['policy', 'test', dir, '--policies', join(EXAMPLES, 'policies'), '--json'],
      noHome,
    );
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as {
      failed: number;
      cases: Array<{ name: string; passed: boolean; failures: string[] }>;
    };
    expect(report.failed).toBe(2);
    const byName = new Map(report.cases.map((c) => [c.name, c]));
    expect(byName.get('someone hoped production billing writes were routine')?.failures).toEqual([
      'outcome: expected allow, got review',
      'review_group: expected null, got "billing-oncall"',
    ]);
    expect(byName.get('the secret export needs two approvals, not one')?.failures).toEqual([
      'approvals: expected 1, got 2',
    ]);

    const plain = await inProcess(['policy', 'test', dir, '--policies', join(EXAMPLES, 'policies')], noHome);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toContain(
      'FAIL wrong.yaml: someone hoped production billing writes were routine -> review (billing-oncall): outcome: expected allow, got review',
    );
    expect(plain.stdout.trim().split('\n').at(-1)).toMatch(/^\d+ passed, 2 failed/);
  });

  it('an initialised data dir carries the tests and runs them with its own config', async () => {
    const home = join(tmp, 'home');
    expect((await inProcess(['init'], home)).code).toBe(0);
    const r = await inProcess(['policy', 'test'], home);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\d+ passed, 0 failed/);
  });

  it('a malformed test file is refused with a coded error, not a crash', async () => {
    const dir = join(tmp, 'malformed');
    cpSync(join(EXAMPLES, 'policies', 'tests'), dir, { recursive: true });
    writeFileSync(join(dir, 'bad.yaml'), 'cases:\n  - name: x\n    request: { action: read }\n');
    const r = await inProcess(['policy', 'test', dir, '--policies', join(EXAMPLES, 'policies')], noHome);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CS_CONFIG_INVALID: bad\.yaml: /);
  });
});
