/**
 * The agent registry lifecycle (NHI1, NHI9, ASI10): workload identity bindings from the CLI,
 * expiry, last-seen without a commit of its own, `agent unused`, and the console's kill switch
 * for a workload-identity agent (THREATS.md B12, B13).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listUnusedAgents } from '@countersign/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { initHome } from '../packages/cli/src/commands/init.js';
import { main } from '../packages/cli/src/main.js';
import { body, type Harness, ISSUER, insertReviewerSession, startHarness } from './support/harness.js';
import {
  appendConfig,
  kubernetesClaims,
  mint,
  newSigningKey,
  registerWorkloadAgent,
  type SigningKeyPair,
} from './support/workload-issuers.js';

const K8S = 'https://k8s.acme.dev';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  try {
    const code = await main(['node', 'countersign', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('countersign agent (workload identity, expiry, unused)', () => {
  let home: string;
  beforeEach(async () => {
    home = mkdtempSync(join(tmpdir(), 'countersign-lifecycle-'));
    await initHome({ home, dev: true });
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  it('B13 agent add binds a workload identity without generating a key; the same identity cannot register again', async () => {
    const sub = 'system:serviceaccount:payments:invoice-bot';
    const add = await run([
      'agent',
      'add',
      'invoice-bot',
      '--owner',
      'payments',
      '--env',
      'production',
      '--workload-issuer',
      K8S,
      '--workload-subject',
      sub,
      '--expires',
      '90d',
      '--dir',
      home,
    ]);
    expect(add.code, add.err).toBe(0);
    expect(add.out).toMatch(
      /registered agent invoice-bot bound to system:serviceaccount:payments:invoice-bot of https:\/\/k8s\.acme\.dev, expires 20/,
    );
    expect(existsSync(join(home, 'agents', 'invoice-bot.jwk'))).toBe(false);

    const again = await run([
      'agent',
      'add',
      'impostor-bot',
      '--owner',
      'other',
      '--workload-issuer',
      K8S,
      '--workload-subject',
      sub,
      '--dir',
      home,
    ]);
    expect(again.code).not.toBe(0);
    expect(again.err).toContain('CS_IDENTITY_EXISTS');

    const half = await run([
      'agent',
      'add',
      'half-bot',
      '--owner',
      'x',
      '--workload-issuer',
      K8S,
      '--dir',
      home,
    ]);
    expect(half.code).not.toBe(0);
    expect(half.err).toContain('--workload-issuer and --workload-subject go together');

    const list = await run(['agent', 'list', '--json', '--dir', home]);
    const agents = JSON.parse(list.out) as Array<Record<string, unknown>>;
    expect(agents.map((a) => a.id)).toEqual(['invoice-bot']);
    expect(agents[0]).toMatchObject({
      workloadIdentities: [{ issuer: K8S, subject: sub }],
      jwkThumbprint: null,
      lastSeenAt: null,
    });
    expect(agents[0]!.expiresAt as number).toBeGreaterThan(Date.now() + 89 * 86_400_000);
  });

  it('agent unused --days N lists never-seen agents by registration age; a bad --days is a usage error', async () => {
    expect((await run(['agent', 'add', 'a-bot', '--owner', 'x', '--dir', home])).code).toBe(0);
    const none = await run(['agent', 'unused', '--days', '1', '--dir', home]);
    expect(none.out).toBe('no agent idle for 1 days\n');
    const all = await run(['agent', 'unused', '--days', '0', '--json', '--dir', home]);
    expect((JSON.parse(all.out) as Array<{ id: string }>).map((a) => a.id)).toEqual(['a-bot']);
    expect((await run(['agent', 'unused', '--days', 'x', '--dir', home])).code).toBe(2);
  });
});

describe('last seen, unused and the console kill switch on a running server', () => {
  let h: Harness;
  let key: SigningKeyPair;
  const token = (name: string) =>
    mint(key, h.clock.now(), kubernetesClaims(K8S, 'countersign', 'payments', name));

  beforeAll(async () => {
    key = await newSigningKey('RS256', 'k1');
    h = await startHarness({
      configure: (home) =>
        appendConfig(
          home,
          `identity:
  trusted_issuers:
    - issuer: ${K8S}
      kind: kubernetes
      jwks: { keys: [${JSON.stringify(key.publicJwk)}] }
      audience: countersign
      algorithms: [RS256]`,
        ),
    });
    for (const name of ['busy-bot', 'idle-bot', 'kill-bot']) {
      await registerWorkloadAgent(h.server.deps.ctx, {
        id: name,
        issuer: K8S,
        subject: `system:serviceaccount:payments:${name}`,
      });
    }
  }, 60_000);
  afterAll(async () => h?.close());

  const lastSeen = async (id: string) =>
    (await h.server.deps.ctx.store.read((tx) => tx.getAgent(id)))?.lastSeenAt ?? null;

  it('NHI1 last-seen is recorded with the call it belongs to, at most once a minute, and drives agent unused', async () => {
    const t0 = h.clock.now();
    const r1 = await h.call('POST', '/v1/access-requests', { token: await token('busy-bot'), body: body() });
    expect(r1.status).toBe(201);
    expect(await lastSeen('busy-bot')).toBe(t0);
    h.clock.advance(30);
    await h.call('POST', '/v1/access-requests', { token: await token('busy-bot'), body: body() });
    expect(await lastSeen('busy-bot')).toBe(t0);
    h.clock.advance(31);
    // A read (long-poll) commits the mark in the unit of work it already runs.
    const id = ((await r1.json()) as { id: string }).id;
    expect(
      (await h.call('GET', `/v1/access-requests/${id}`, { token: await token('busy-bot') })).status,
    ).toBe(200);
    expect(await lastSeen('busy-bot')).toBe(t0 + 61_000);
    // A refused call marks nothing.
    expect(await lastSeen('idle-bot')).toBeNull();

    h.clock.advance(8 * 86_400);
    await h.call('POST', '/v1/access-requests', { token: await token('busy-bot'), body: body() });
    const idle = await listUnusedAgents({ ctx: h.server.deps.ctx, input: { days: 7 } });
    expect(idle.map((a) => a.id).sort()).toEqual(['idle-bot', 'kill-bot']);
  });

  it('B12 the console suspend of a workload agent revokes its leases, cancels its pending reviews and refuses its token at once', async () => {
    const allowed = (await (
      await h.call('POST', '/v1/access-requests', { token: await token('kill-bot'), body: body() })
    ).json()) as { lease_id: string; status: string };
    expect(allowed.status).toBe('allowed');
    const pending = (await (
      await h.call('POST', '/v1/access-requests', {
        token: await token('kill-bot'),
        body: body({ action: 'write', resource: 'postgres://prod/billing/invoices' }),
      })
    ).json()) as { id: string; status: string };
    expect(pending.status).toBe('pending');

    const session = await insertReviewerSession(h.server.deps.ctx, 'ops');
    const res = await h.call('POST', '/v1/console/agents/kill-bot/suspend', {
      body: { reason: 'compromised pod' },
      headers: { cookie: `cs_session=${session}`, origin: new URL(ISSUER).origin },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ revoked_leases: 1, cancelled_requests: 1, pending_revocations: [] });

    const refused = await h.call('POST', '/v1/access-requests', {
      token: await token('kill-bot'),
      body: body(),
    });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CS_AGENT_SUSPENDED');
    const store = h.server.deps.ctx.store;
    expect((await store.read((tx) => tx.getRequest(pending.id)))?.status).toBe('cancelled');
    expect((await store.read((tx) => tx.getLease(allowed.lease_id)))?.status).toBe('revoked');
    const events = [];
    for await (const e of store.auditEvents()) if (e.type === 'agent.suspended') events.push(e);
    expect(events.at(-1)).toMatchObject({ actor: { type: 'reviewer', id: 'rev_ops' } });
  });
});
