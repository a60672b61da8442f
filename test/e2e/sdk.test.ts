/**
 * The SDK against a running server over real HTTP: a Kubernetes-style workload agent reads its
 * projected token from a file (re-read on rotation), adds DPoP to every call, asks for a
 * production write, waits while a human approves it with a real passkey (Chromium's virtual
 * authenticator), receives a DPoP-bound lease and receipt; a resource server verifies the
 * lease with `@countersign/sdk/verify`; the agent completes its task; verification then fails.
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessTokenCredential } from '@countersign/protocol';
import { AccessRequestTimeoutError, CountersignApiError, CountersignClient } from '@countersign/sdk';
import { tokenFileSource } from '@countersign/sdk/node';
import { LeaseVerificationError, LeaseVerifier } from '@countersign/sdk/verify';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerKeyAgent } from '../support/harness.js';
import {
  appendConfig,
  kubernetesClaims,
  mint,
  newSigningKey,
  registerWorkloadAgent,
  type SigningKeyPair,
} from '../support/workload-issuers.js';
import { PROD_WRITE } from './support/agent.js';
import { launchChromium, newReviewerSession, type ReviewerSession } from './support/browser.js';
import { type LiveServer, startLiveServer } from './support/live-server.js';

const K8S = 'https://kubernetes.default.svc.cluster.local';
const RS_SECRET = 'orders-api-introspection-secret';
const RESOURCE_URL = 'https://billing-db-proxy.acme.dev/v1/invoices';

describe('SDK end to end: workload identity, DPoP, review, lease verification', () => {
  let live: LiveServer;
  let browser: Browser;
  let alice: ReviewerSession;
  let k8sKey: SigningKeyPair;
  let tokenFile: string;
  let client: CountersignClient;
  let verifier: LeaseVerifier;

  const projectToken = (name = 'invoice-bot') =>
    mint(k8sKey, Date.now(), kubernetesClaims(K8S, 'countersign', 'billing', name), { lifetime: 3600 });

  beforeAll(async () => {
    k8sKey = await newSigningKey('RS256', 'sa-key-1');
    live = await startLiveServer({
      configure: (home) => {
        const file = join(home, 'countersign.yaml');
        const hash = createHash('sha256').update(RS_SECRET).digest('hex');
        writeFileSync(
          file,
          readFileSync(file, 'utf8').replace(
            'resource_servers: []',
            `resource_servers: [{ id: orders-api, secret_sha256: "${hash}" }]`,
          ),
        );
        appendConfig(
          home,
          `identity:
  trusted_issuers:
    - issuer: ${K8S}
      kind: kubernetes
      jwks: { keys: [${JSON.stringify(k8sKey.publicJwk)}] }
      audience: countersign
      algorithms: [RS256]
      namespaces: [billing]
      require_dpop: true`,
        );
      },
    });
    tokenFile = join(live.home, 'projected-token');
    writeFileSync(tokenFile, await projectToken());
    await registerWorkloadAgent(live.server.deps.ctx, {
      id: 'invoice-bot',
      owner: 'billing',
      issuer: K8S,
      subject: 'system:serviceaccount:billing:invoice-bot',
    });
    client = new CountersignClient({ server: live.url, tokenSource: tokenFileSource(tokenFile), dpop: true });
    verifier = new LeaseVerifier({
      issuer: live.url,
      audience: 'postgres://prod/billing',
      introspection: { clientId: 'orders-api', clientSecret: RS_SECRET },
    });
    browser = await launchChromium();
    alice = await newReviewerSession(browser, live.url);
    expect(
      (await alice.enroll(await live.invite('alice@acme.dev', ['billing-oncall', 'security']))).status,
    ).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await live?.close();
  });

  async function pendingId(): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const pending = await live.server.deps.ctx.store.read((tx) =>
        tx.listPendingRequests({ agentId: 'invoice-bot' }, 10),
      );
      if (pending[0]) return pending[0].id;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no pending request appeared');
  }

  it('request, wait for review, receive, verify, complete task, verify fails', async () => {
    const waiting = client.requestAccess(PROD_WRITE, { timeoutMs: 60_000 });
    const id = await pendingId();
    // The projected token rotates while the agent waits: the next call reads the new one.
    writeFileSync(tokenFile, await projectToken());
    const vote = await alice.decide(id, 'approve');
    expect(vote.status).toBe(200);
    const result = await waiting;
    expect(result.status).toBe('allowed');
    if (result.status !== 'allowed') throw new Error('unreachable');
    expect(result.requestId).toBe(id);
    const credential = result.credential as AccessTokenCredential;
    expect(credential.token_type).toBe('DPoP');
    const jkt = await (await client.dpop())!.thumbprint();
    expect(decodeJwt(credential.access_token).cnf).toEqual({ jkt });
    const jwks = createLocalJWKSet(
      (await (await fetch(`${live.url}/.well-known/jwks.json`)).json()) as never,
    );
    await jwtVerify(result.receipt!, jwks, { typ: 'countersign-receipt+jwt', issuer: live.url });

    // The resource server verifies the lease it is shown, with the proof for this very call.
    const headers = await client.leaseHeaders(result.credential!, 'POST', RESOURCE_URL);
    const ok = await verifier.verifyRequest(new Request(RESOURCE_URL, { method: 'POST', headers }), {
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
    });
    expect(ok).toMatchObject({ agentId: 'invoice-bot', leaseId: result.leaseId, jkt });

    const expectRefused = async (p: Promise<unknown>, code: string) => {
      const error = await p.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LeaseVerificationError);
      expect((error as LeaseVerificationError).code).toBe(code);
    };
    const token = credential.access_token;
    const check = {
      token,
      method: 'POST',
      url: RESOURCE_URL,
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
    };
    // B8: the proof is single use; a lease without its proof, or with a thief's proof, is refused.
    await expectRefused(verifier.verify({ ...check, dpop: headers.dpop! }), 'dpop_replayed');
    await expectRefused(verifier.verify({ ...check, dpop: null }), 'dpop_required');
    const thief = new CountersignClient({
      server: live.url,
      tokenSource: tokenFileSource(tokenFile),
      dpop: true,
    });
    const stolen = await thief.leaseHeaders(result.credential!, 'POST', RESOURCE_URL);
    await expectRefused(verifier.verify({ ...check, dpop: stolen.dpop! }), 'invalid_dpop_proof');
    // The proof is for one method and URL; the lease for one action and resource.
    const fresh = async (method = 'POST', url = RESOURCE_URL) =>
      (await client.leaseHeaders(result.credential!, method, url)).dpop!;
    await expectRefused(verifier.verify({ ...check, dpop: await fresh('DELETE') }), 'invalid_dpop_proof');
    // The right key, but a proof made for another access token (its ath does not match this lease).
    const forOtherToken = await client.leaseHeaders(
      { ...result.credential!, access_token: `${token}x` } as AccessTokenCredential,
      'POST',
      RESOURCE_URL,
    );
    await expectRefused(verifier.verify({ ...check, dpop: forOtherToken.dpop! }), 'invalid_dpop_proof');
    await expectRefused(
      verifier.verify({ ...check, dpop: await fresh('POST', 'https://other.acme.dev/v1/invoices') }),
      'invalid_dpop_proof',
    );
    await expectRefused(
      verifier.verify({ ...check, action: 'delete', dpop: await fresh() }),
      'insufficient_scope',
    );
    await expectRefused(
      verifier.verify({ ...check, resource: 'postgres://prod/billing/payouts', dpop: await fresh() }),
      'insufficient_scope',
    );
    await expectRefused(
      new LeaseVerifier({ issuer: live.url, audience: 'postgres://prod' }).verify({
        ...check,
        dpop: await fresh(),
      }),
      'wrong_audience',
    );
    // The agent itself sees its bound lease as active only with its proof (the SDK sends it).
    expect(await client.introspect(token)).toMatchObject({ active: true, cnf: { jkt } });

    const done = await client.completeTask();
    expect(done.revoked_leases).toEqual([result.leaseId]);
    // C1: after completion the lease is refused at once (introspection), whatever its exp says.
    await expectRefused(verifier.verify({ ...check, dpop: await fresh() }), 'revoked');
  }, 90_000);

  it('the token file is re-read on every call: a rotated token for another identity is refused at once', async () => {
    writeFileSync(tokenFile, await projectToken('someone-else'));
    const error = await client
      .requestAccess({ ...PROD_WRITE, intent: { ...PROD_WRITE.intent, task_id: 'rotated' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CountersignApiError);
    expect((error as CountersignApiError).code).toBe('CS_IDENTITY_UNBOUND');
    writeFileSync(tokenFile, await projectToken());
  });

  it('a denied request resolves with the reason; a pending one times out or aborts as asked', async () => {
    const denied = await client.requestAccess({
      action: 'delete',
      resource: 's3://nobody-knows/dump.sql',
      intent: { purpose: 'clean up', task_id: 'deny-1' },
    });
    expect(denied.status).toBe('denied');
    if (denied.status === 'allowed') throw new Error('unreachable');
    expect(denied.reason.length).toBeGreaterThan(0);
    console.log(`SDK denied reason: ${denied.reason}`);

    const slow = client.requestAccess(
      { ...PROD_WRITE, intent: { ...PROD_WRITE.intent, task_id: 'timeout-1' } },
      { timeoutMs: 1500 },
    );
    const timedOut = await slow.catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(AccessRequestTimeoutError);
    const requestId = (timedOut as AccessRequestTimeoutError).requestId;
    expect((await client.withdraw(requestId)).status).toBe('withdrawn');

    const controller = new AbortController();
    const aborted = client.requestAccess(
      { ...PROD_WRITE, intent: { ...PROD_WRITE.intent, task_id: 'abort-1' } },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error('agent shutting down')), 500);
    const reason = await aborted.catch((e: unknown) => e);
    expect(String(reason)).toMatch(/shutting down|abort/i);
  }, 30_000);

  it('B9 a private-key agent without DPoP gets a bearer lease its resource server accepts for the granted action only; another resource server refuses it', async () => {
    const { privateJwk } = await registerKeyAgent(live.server.deps.ctx, 'report-bot');
    const reporter = new CountersignClient({ server: live.url, agentId: 'report-bot', privateJwk });
    const read = await reporter.requestAccess({
      action: 'read',
      resource: 'postgres://staging/app/orders',
      intent: { purpose: 'Reconcile orders', task_id: 'report-1' },
    });
    expect(read.status).toBe('allowed');
    if (read.status !== 'allowed') throw new Error('unreachable');
    expect((read.credential as AccessTokenCredential).token_type).toBe('Bearer');
    const staging = new LeaseVerifier({ issuer: live.url, audience: 'postgres://staging/app' });
    const url = 'https://orders.acme.dev/orders';
    const headers = await reporter.leaseHeaders(read.credential!, 'GET', url);
    await expect(
      staging.verifyRequest(new Request(url, { headers }), {
        action: 'read',
        resource: 'postgres://staging/app/orders',
      }),
    ).resolves.toMatchObject({ agentId: 'report-bot', jkt: null });
    await expect(
      staging.verifyRequest(new Request(url, { headers }), {
        action: 'write',
        resource: 'postgres://staging/app/orders',
      }),
    ).rejects.toMatchObject({ code: 'insufficient_scope' });
    // B9: a credential for resource X is refused by resource server Y (audience).
    const prodOrders = new LeaseVerifier({ issuer: live.url, audience: 'postgres://prod' });
    await expect(
      prodOrders.verifyRequest(new Request(url, { headers }), {
        action: 'read',
        resource: 'postgres://staging/app/orders',
      }),
    ).rejects.toMatchObject({ code: 'wrong_audience' });
  });

  it('the example agent under examples/agent runs against the server: read allowed and verified, write pending then withdrawn, task completed', async () => {
    const { privateJwk } = await registerKeyAgent(live.server.deps.ctx, 'example-bot', { owner: 'billing' });
    const keyFile = join(live.home, 'example-bot.jwk');
    writeFileSync(keyFile, JSON.stringify({ ...privateJwk, agent_id: 'example-bot' }), { mode: 0o600 });
    const root = join(import.meta.dirname, '..', '..');
    // Asynchronous: the server answering the example runs in this very process.
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'examples/agent/invoice-bot.ts')], {
      cwd: root,
      env: {
        ...process.env,
        COUNTERSIGN_URL: live.url,
        COUNTERSIGN_AGENT_ID: 'example-bot',
        COUNTERSIGN_AGENT_KEY: keyFile,
        COUNTERSIGN_DPOP: '1',
        COUNTERSIGN_WAIT: '2',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run = { stdout: '', stderr: '', status: null as number | null };
    child.stdout.on('data', (d) => {
      run.stdout += d;
    });
    child.stderr.on('data', (d) => {
      run.stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    run.status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    clearTimeout(timer);
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^read: allowed$/m);
    expect(run.stdout).toMatch(/verified by the resource server \(DPoP-bound\)/);
    expect(run.stdout).toMatch(/^write: pending review by billing-oncall/m);
    expect(run.stdout).toMatch(/withdrawing req_/);
    expect(run.stdout).toMatch(/completed: 1 lease\(s\) revoked/);
  }, 90_000);
});
