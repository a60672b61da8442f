/**
 * THREATS.md R6 (INV-9, H8, E9, J1, B7, L3): the fail-closed matrix. For each fault, requests
 * that would be allowed are sent while it lasts: 0 allows, 0 credentials, nothing recorded as
 * issued; then the fault is cleared and the time until the same request is allowed again is
 * measured (goal: within 10 s). Every case prints its figures; the suite prints the matrix.
 *
 * Real faults, no mocks: a full filesystem (a small tmpfs filled to ENOSPC), PostgreSQL behind a
 * TCP proxy that is cut, a PostgreSQL database switched to read-only, the policy directory
 * missing or corrupt at start (recovered by the policy reload loop), a workload issuer's JWKS
 * endpoint down, the sealed-secret master key file missing.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../packages/store/test/support/pg-database.js';
import { startTcpProxy } from '../../packages/store/test/support/tcp-proxy.js';
import { editConfig, sealedSecretKind } from '../issuers/kinds.js';
import { body, type Harness, startHarness, type TestAgent } from '../support/harness.js';
import {
  appendConfig,
  JwksHost,
  kubernetesClaims,
  mint,
  newSigningKey,
  registerWorkloadAgent,
} from '../support/workload-issuers.js';

const RECOVERY_BOUND_MS = 10_000;
const FAULTY_REQUESTS = 12;
const matrix: Array<{
  fault: string;
  requests: number;
  allows: number;
  credentials: number;
  recovery_ms: number;
}> = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  json: any;
}

/** Sends `n` allow-shaped requests during the fault; returns how many were allowed or carried a credential. */
async function duringFault(send: () => Promise<Answer>, n = FAULTY_REQUESTS) {
  let allows = 0;
  let credentials = 0;
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = await send();
    statuses.push(a.status);
    if (a.json?.status === 'allowed') allows++;
    if (a.json?.credential !== undefined) credentials++;
  }
  return { allows, credentials, statuses };
}

/** Time from now until `send` is allowed again (polled every 100 ms, up to 3x the bound). */
async function recovery(send: () => Promise<Answer>): Promise<number> {
  const started = Date.now();
  for (;;) {
    const a = await send().catch(() => ({ status: 0, json: null }));
    if (a.json?.status === 'allowed' && a.json?.credential) return Date.now() - started;
    if (Date.now() - started > RECOVERY_BOUND_MS * 3) return Number.POSITIVE_INFINITY;
    await sleep(100);
  }
}

function report(
  fault: string,
  during: { allows: number; credentials: number; statuses: number[] },
  ms: number,
) {
  matrix.push({
    fault,
    requests: during.statuses.length,
    allows: during.allows,
    credentials: during.credentials,
    recovery_ms: ms,
  });
  console.log(
    JSON.stringify({
      goal: 'R6',
      fault,
      ...during,
      statuses: [...new Set(during.statuses)],
      recovery_ms: ms,
    }),
  );
  expect(during.allows).toBe(0);
  expect(during.credentials).toBe(0);
  expect(ms).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
}

function canMountTmpfs(): boolean {
  if (process.platform !== 'linux') return false;
  const dir = mkdtempSync(join(tmpdir(), 'countersign-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

afterAll(() => {
  console.log(JSON.stringify({ goal: 'R6', matrix }));
});

describe('R6 fail-closed matrix', () => {
  let h: Harness | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  const allowOnce = (agent: TestAgent) => async () => h!.requestAccess(agent, body());

  for (const writer of ['thread', 'inline'] as const) {
    it.skipIf(!canMountTmpfs())(
      `R6 H8 disk full on SQLite (writer ${writer}): a real full filesystem (an 8 MiB tmpfs filled to ENOSPC), 0 allows, recovery once space is freed`,
      async () => {
        const mount = mkdtempSync(join(tmpdir(), 'countersign-r6-full-'));
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount]);
        cleanups.push(() => {
          execFileSync('umount', ['-l', mount]);
          rmSync(mount, { recursive: true, force: true });
        });
        const home = join(mount, 'home');
        mkdirSync(home);
        h = await startHarness({ home, overrides: { sqliteWriter: writer } });
        const agent = await h.addAgent('bot');
        expect((await allowOnce(agent)()).json.status).toBe('allowed');
        // Fill the filesystem to the last byte.
        const filler = join(mount, 'filler');
        const fd = openSync(filler, 'w');
        const chunk = Buffer.alloc(64 * 1024, 1);
        try {
          for (;;) writeSync(fd, chunk);
        } catch (error) {
          expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
        }
        try {
          for (;;) writeSync(fd, chunk.subarray(0, 512));
        } catch {
          // full to the block
        }
        closeSync(fd);
        const during = await duringFault(allowOnce(agent), 40);
        const health = await h.call('GET', '/healthz');
        expect(health.status).toBe(503);
        expect(JSON.stringify(await health.json())).toMatch(/writes failing since .*(full|disk|I\/O)/i);
        unlinkSync(filler);
        const ms = await recovery(allowOnce(agent));
        expect((await h.call('GET', '/healthz')).status).toBe(200);
        await h.close();
        h = undefined;
        report(`disk full (SQLite, writer ${writer})`, during, ms);
      },
      120_000,
    );
  }

  it('R6 E9 database down: PostgreSQL behind a TCP proxy that is cut; 0 allows, recovery when it comes back; then read-only (default_transaction_read_only)', async () => {
    const database = await createTestDatabase();
    const proxy = await startTcpProxy('127.0.0.1', 5432);
    cleanups.push(async () => {
      await proxy.close();
      await database.drop();
    });
    h = await startHarness({
      configure: (home) =>
        editConfig(home, (c) => {
          c.store = {
            postgres: {
              url: proxy.url(database.url),
              pool_max: 4,
              acquire_timeout: '1s',
              statement_timeout: '2s',
            },
          };
        }),
    });
    const agent = await h.addAgent('bot');
    expect((await allowOnce(agent)()).json.status).toBe('allowed');
    proxy.mode = 'reset';
    const down = await duringFault(allowOnce(agent));
    expect(down.statuses.every((s) => s === 503)).toBe(true);
    proxy.mode = 'pass';
    report('database down (PostgreSQL, connection cut)', down, await recovery(allowOnce(agent)));

    // Read-only: new sessions start read-only; existing ones are ended so none is left writable.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const setReadOnly = async (on: boolean) => {
      await admin.query(
        `alter database ${admin.escapeIdentifier(database.name)} set default_transaction_read_only = ${on ? 'on' : 'off'}`,
      );
      await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [database.name],
      );
    };
    await setReadOnly(true);
    const readOnly = await duringFault(allowOnce(agent));
    const health = await h.call('GET', '/healthz');
    expect(health.status).toBe(503);
    await setReadOnly(false);
    const ms = await recovery(allowOnce(agent));
    await admin.end();
    await h.close();
    h = undefined;
    report('database read-only (PostgreSQL default_transaction_read_only)', readOnly, ms);
  }, 180_000);

  for (const fault of ['missing', 'corrupt'] as const) {
    it(`R6 J1 policy ${fault} at start: unready and every request denied; the reload loop puts the fixed set in force`, async () => {
      // The default reload poll (POLICY_POLL_MS, 2 s), as a served instance runs it.
      h = await startHarness({
        configure: (home) => {
          if (fault === 'missing') renameSync(join(home, 'policies'), join(home, 'policies.away'));
          else
            writeFileSync(
              join(home, 'policies', 'zz-broken.cedar'),
              'permit (principal, action, resource) when { ;',
            );
        },
      });
      await h.server.recordStart();
      h.server.startBackground();
      const agent = await h.addAgent('bot');
      const during = await duringFault(allowOnce(agent));
      const health = await h.call('GET', '/healthz');
      expect(health.status).toBe(503);
      expect(((await health.json()) as any).checks.policy).toMatch(/policy set failed to load/);
      if (fault === 'missing') renameSync(join(h.home, 'policies.away'), join(h.home, 'policies'));
      else unlinkSync(join(h.home, 'policies', 'zz-broken.cedar'));
      const ms = await recovery(allowOnce(agent));
      expect((await h.call('GET', '/healthz')).status).toBe(200);
      const types: string[] = [];
      for await (const e of h.server.deps.ctx.store.auditEvents()) types.push(e.type);
      expect(types).toContain('policy.load_failed');
      expect(types).toContain('policy.loaded');
      await h.close();
      h = undefined;
      report(`policy ${fault}`, during, ms);
    }, 60_000);
  }

  it('R6 J1 a corrupt policy reload is refused (policy.load_failed, healthz says so) and the last good set stays in force by its hash', async () => {
    h = await startHarness({ overrides: { policyPollMs: 300 } });
    h.server.startBackground();
    const agent = await h.addAgent('bot');
    const before = h.server.deps.ctx.policy().version;
    writeFileSync(
      join(h.home, 'policies', 'zz-broken.cedar'),
      'forbid (principal, action, resource) when { ;',
    );
    const refused = await h.server.reloadPolicies();
    expect(refused).toBe('refused');
    expect(h.server.deps.ctx.policy().version).toBe(before);
    const a = await allowOnce(agent)();
    expect(a.json.decision.policy_version ?? before).toBe(before);
    const health = (await (await h.call('GET', '/healthz')).json()) as any;
    expect(health.checks.policy).toMatch(/newer policy files refused/);
    const events = [];
    for await (const e of h.server.deps.ctx.store.auditEvents()) events.push(e);
    const failed = events.filter((e) => e.type === 'policy.load_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data.policy_version).toBe(before);
    // A good change is picked up by the poll, without a signal.
    unlinkSync(join(h.home, 'policies', 'zz-broken.cedar'));
    writeFileSync(join(h.home, 'policies', 'zz-extra.cedar'), '// an extra comment changes the set\n');
    const started = Date.now();
    while (h.server.deps.ctx.policy().version === before && Date.now() - started < 5000) await sleep(50);
    expect(h.server.deps.ctx.policy().version).not.toBe(before);
    await h.close();
    h = undefined;
  }, 60_000);

  it('R6 B7 JWKS unreachable: a workload issuer whose keys cannot be fetched gets 503 and no decision; recovery when it answers', async () => {
    const host = await new JwksHost().start();
    cleanups.push(() => host.close());
    const key = await newSigningKey('ES256', 'r6-1');
    host.setKeys('k8s', [key.publicJwk]);
    host.down('k8s');
    const ISS = 'https://k8s.r6.acme.dev';
    h = await startHarness({
      configure: (home) =>
        appendConfig(
          home,
          `identity:
  trusted_issuers:
    - issuer: ${ISS}
      kind: kubernetes
      jwks_uri: ${host.url('/k8s/jwks')}
      audience: countersign
      algorithms: [ES256]
      namespaces: [payments]
      jwks_cache: { max_age: 1s, cooldown: 1s, timeout: 1s }`,
        ),
    });
    await registerWorkloadAgent(h.server.deps.ctx, {
      id: 'k8s-bot',
      issuer: ISS,
      subject: 'system:serviceaccount:payments:k8s-bot',
    });
    const send = async () => {
      const token = await mint(
        key,
        h!.clock.now(),
        kubernetesClaims(ISS, 'countersign', 'payments', 'k8s-bot'),
      );
      const res = await h!.call('POST', '/v1/access-requests', { token, body: body() });
      return { status: res.status, json: await res.json() };
    };
    const during = await duringFault(send);
    expect(new Set(during.statuses)).toEqual(new Set([503]));
    host.up('k8s');
    const ms = await recovery(send);
    await h.close();
    h = undefined;
    report('JWKS unreachable', during, ms);
  }, 60_000);

  it('R6 L3 master key missing: sealed-secret requests release nothing; the key file put back is picked up without a restart', async () => {
    const kind = sealedSecretKind();
    const home = mkdtempSync(join(tmpdir(), 'countersign-r6-mk-'));
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    h = await startHarness({ home, configure: (d) => kind.configure(d) });
    await kind.ready!(h);
    await h.close({ keepHome: true });
    const keyFile = join(home, 'keys', 'master.key');
    renameSync(keyFile, `${keyFile}.away`);
    h = await startHarness({ home });
    const agent = await h.addAgent('vault-bot', { environment: 'staging' });
    const send = () => h!.requestAccess(agent, body({ resource: kind.resource, action: kind.action }));
    const during = await duringFault(send);
    const health = (await (await h.call('GET', '/healthz')).json()) as any;
    expect(JSON.stringify(health)).toMatch(/master key/);
    renameSync(`${keyFile}.away`, keyFile);
    const ms = await recovery(send);
    await h.close({ keepHome: true });
    h = undefined;
    report('master key missing', during, ms);
  }, 60_000);
});
