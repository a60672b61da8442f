/**
 * The credential commands as an operator runs them: real processes on a real data directory.
 * `secret put` reads stdin only; `lease list` and `lease revoke` act on the local store.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { leaseList, leaseRevoke } from '../packages/cli/src/commands/lease.js';
import { addCatalogEntries, addMasterKey, editConfig } from './issuers/kinds.js';
import { body, type Harness, startHarness } from './support/harness.js';

const BIN = resolve(import.meta.dirname, '../packages/cli/bin/countersign.cjs');

function cli(home: string, args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, COUNTERSIGN_HOME: home },
    encoding: 'utf8',
    timeout: 60_000,
    ...(input === undefined ? { stdio: ['ignore', 'pipe', 'pipe'] } : { input }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('countersign secret and lease', () => {
  const homes: string[] = [];
  afterAll(() => {
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });

  it('secret put takes the value from stdin only; lease list shows leases without credentials; lease revoke ends one, idempotently', {
    timeout: 240_000,
  }, async () => {
    let h: Harness = await startHarness({
      configure: (home) => {
        addMasterKey(home);
        editConfig(home, (c) => {
          c.issuers = { vault: { kind: 'sealed_secret' } };
        });
        addCatalogEntries(
          home,
          `  - pattern: secret://ops/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: vault
`,
        );
      },
    });
    const home = h.home;
    homes.push(home);
    await h.close({ keepHome: true });

    const put = cli(home, ['secret', 'put', 'ops/api-key'], 'the-canary-value-0123456789\n');
    expect(put.stderr).toBe('');
    expect(put.stdout).toMatch(
      /^sealed secret:\/\/ops\/api-key version 1 \(master key mk_[0-9a-f]{16}, fingerprint hmac-sha256:[0-9a-f]{64}\)/,
    );
    // The value is never an argument.
    const argv = cli(home, ['secret', 'put', 'ops/other', 'the-canary-value-0123456789']);
    expect(argv.code).not.toBe(0);
    const list = cli(home, ['secret', 'list']);
    expect(list.stdout).toMatch(/secret:\/\/ops\/api-key {2}v1 {2}key=mk_/);
    expect(list.stdout).not.toContain('the-canary-value');

    h = await startHarness({ home, configure: () => {} });
    const agent = await h.addAgent('ops-bot', { environment: 'staging' });
    const released = await h.requestAccess(agent, {
      action: 'read',
      resource: 'secret://ops/api-key',
      intent: { purpose: 'rotate the integration', task_id: 'ops-1' },
    });
    expect(released.json.credential.value).toBe('the-canary-value-0123456789');
    const token = await h.requestAccess(agent, body({ intent: { purpose: 'p', task_id: 'ops-2' } }));
    await h.close({ keepHome: true });

    const listed = cli(home, ['lease', 'list', '--json']);
    expect(listed.code).toBe(0);
    const leases = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(leases.map((l) => l.kind).sort()).toEqual(['access_token', 'sealed_secret']);
    expect(listed.stdout).not.toContain('the-canary-value');
    expect(listed.stdout).not.toContain(token.json.credential.access_token);

    const revoked = cli(home, ['lease', 'revoke', token.json.lease_id, '--reason', 'leaving the team']);
    expect(revoked.stdout).toBe(`revoked ${token.json.lease_id}\n`);
    const again = cli(home, ['lease', 'revoke', token.json.lease_id]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/was not live \(revoked\); nothing changed/);
    // The same library calls, in process (each CLI process costs seconds).
    const active = await leaseList(home, { status: ['active'] });
    expect(active.map((l) => l.lease_id)).toEqual([released.json.lease_id]);
    await expect(leaseList(home, { status: ['bogus'] })).rejects.toMatchObject({
      code: 'CS_INVALID_REQUEST',
    });
    await expect(leaseRevoke(home, 'lease_nope')).rejects.toMatchObject({ code: 'CS_NOT_FOUND' });
  });
});
