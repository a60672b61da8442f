/**
 * Federated workload identity under attack (THREATS.md B1-B7, B11-B13, G1): a real server on
 * a real SQLite file, with a Kubernetes-shaped issuer and a SPIFFE JWT-SVID issuer built with
 * jose, their keys served by a local JWKS host we control (rotate, remove, stop, count
 * fetches), and GitHub-shaped tokens verified against inline keys.
 */
import { sign as cryptoSign, KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suspendAgent } from '@countersign/core';
import { type CryptoKey, exportSPKI, importJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, insertReviewerSession, startHarness } from '../support/harness.js';
import {
  appendConfig,
  githubClaims,
  JwksHost,
  kubernetesClaims,
  mint,
  newSigningKey,
  registerWorkloadAgent,
  type SigningKeyPair,
  svidClaims,
} from '../support/workload-issuers.js';
import { dbCounts } from './attack-kit.js';

const AUD = 'countersign';
const GITHUB = 'https://token.actions.githubusercontent.com';
const SPIRE = 'https://spire.acme.dev';
const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

let host: JwksHost;
let h: Harness;
let K8S: string;
let FAST: string;
let k8sKey: SigningKeyPair;
let fastA: SigningKeyPair;
let fastB: SigningKeyPair;
let svidKey: SigningKeyPair;
let ghKey: SigningKeyPair;
let attacker: SigningKeyPair;
let bundleFile: string;

async function register(id: string, issuer: string, subject: string, environment = 'production') {
  await registerWorkloadAgent(h.server.deps.ctx, { id, issuer, subject, environment });
}

function submit(token: string, extra: Record<string, string> = {}, b: Record<string, unknown> = body()) {
  return h.call('POST', '/v1/access-requests', { token, body: b, headers: extra });
}

async function expectCode(res: Response, status: number, codes: string | readonly string[]) {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  const code = JSON.parse(text).error?.code;
  expect(typeof codes === 'string' ? [codes] : codes, text).toContain(code);
}

const k8sToken = (o: Parameters<typeof mint>[3] = {}, ns = 'payments', name = 'invoice-bot') =>
  mint(k8sKey, h.clock.now(), kubernetesClaims(K8S, AUD, ns, name), o);

async function accepted(token: string) {
  const res = await submit(token);
  const text = await res.text();
  expect(res.status, text).toBe(201);
  return JSON.parse(text);
}

function writeBundle(keys: SigningKeyPair[]) {
  writeFileSync(
    bundleFile,
    JSON.stringify({
      spiffe_sequence: Date.now(),
      keys: keys.map((k) => ({ ...k.publicJwk, use: 'jwt-svid', alg: undefined })),
    }),
  );
}

beforeAll(async () => {
  host = await new JwksHost().start();
  K8S = host.url('/k8s');
  FAST = host.url('/fast');
  k8sKey = await newSigningKey('RS256', 'k8s-1');
  fastA = await newSigningKey('ES256', 'fast-a');
  fastB = await newSigningKey('ES256', 'fast-b');
  svidKey = await newSigningKey('ES256', 'svid-1');
  ghKey = await newSigningKey('RS256', 'gh-1');
  attacker = await newSigningKey('RS256', 'k8s-1'); // same kid as the real key, on purpose
  host.setKeys('k8s', [k8sKey.publicJwk]);
  host.setKeys('fast', [fastA.publicJwk]);
  host.setKeys('attacker', [attacker.publicJwk]);
  h = await startHarness({
    configure: (home) => {
      bundleFile = join(home, 'spiffe-bundle.json');
      writeBundle([svidKey]);
      appendConfig(
        home,
        `identity:
  trusted_issuers:
    - issuer: ${K8S}
      kind: kubernetes
      jwks_uri: ${host.url('/k8s/jwks')}
      audience: ${AUD}
      algorithms: [RS256]
      namespaces: [payments, staging]
    - issuer: ${FAST}
      kind: kubernetes
      jwks_uri: ${host.url('/fast/jwks')}
      audience: ${AUD}
      algorithms: [ES256]
      jwks_cache: { max_age: 1s, cooldown: 1s, timeout: 1s }
    - issuer: ${SPIRE}
      kind: spiffe
      spiffe_bundle: spiffe-bundle.json
      trust_domain: acme.dev
      audience: ${AUD}
      algorithms: [ES256]
    - issuer: ${GITHUB}
      kind: github
      jwks: { keys: [${JSON.stringify(ghKey.publicJwk)}] }
      audience: ${AUD}
      algorithms: [RS256]
      subject_prefix: "repo:acme/"
      claims: { repository: acme/payments, environment: [production, staging] }`,
      );
    },
  });
  await register('invoice-bot', K8S, 'system:serviceaccount:payments:invoice-bot');
  await register('staging-bot', K8S, 'system:serviceaccount:staging:invoice-bot', 'staging');
  await register('fast-bot', FAST, 'system:serviceaccount:payments:fast-bot');
  await register('svid-bot', SPIRE, 'spiffe://acme.dev/ns/payments/sa/invoice-bot');
  await register('deploy-bot', GITHUB, 'repo:acme/payments:environment:production');
}, 60_000);

afterAll(async () => {
  await h?.close();
  await host?.close();
});

describe('federated workload identity', () => {
  it('B1 control: a Kubernetes projected token, a JWT-SVID and a GitHub Actions token are each accepted for their bound agent', async () => {
    expect((await accepted(await k8sToken())).status).toBe('allowed');
    await accepted(
      await mint(
        svidKey,
        h.clock.now(),
        svidClaims(SPIRE, AUD, 'spiffe://acme.dev/ns/payments/sa/invoice-bot'),
        {
          header: { typ: 'JWT' },
        },
      ),
    );
    await accepted(
      await mint(ghKey, h.clock.now(), githubClaims(AUD, 'acme/payments', 'production'), {
        header: { typ: 'JWT' },
      }),
    );
    // The same workload token is legitimately reused for its lifetime (not one-time).
    const reused = await k8sToken();
    await accepted(reused);
    await accepted(reused);
  });

  it('B1 a token signed by another key under the real kid, a stripped signature and bit flips are 401', async () => {
    await expectCode(await submit(await k8sToken({ key: attacker })), 401, 'CS_TOKEN_INVALID');
    const good = await k8sToken();
    const [hd, pl, sig] = good.split('.') as [string, string, string];
    await expectCode(await submit(`${hd}.${pl}.`), 401, 'CS_TOKEN_INVALID');
    let acceptedCount = 0;
    for (let i = 0; i < 200; i++) {
      const seg = i % 3;
      const parts = [hd, pl, sig];
      const s = parts[seg]!;
      const pos = (i * 7) % s.length;
      const ch = s[pos] === 'A' ? 'B' : 'A';
      parts[seg] = s.slice(0, pos) + ch + s.slice(pos + 1);
      const res = await submit(parts.join('.'));
      if (res.status === 201) acceptedCount++;
      else expect(res.status).toBe(401);
    }
    expect(acceptedCount).toBe(0);
  });

  describe('B2 G1 time claims', () => {
    it('B2 G1 exp 59 s ago is accepted (skew 60 s), 61 s ago is 401 CS_TOKEN_EXPIRED; a missing exp is 401', async () => {
      const now = Math.floor(h.clock.now() / 1000);
      await accepted(await k8sToken({ iat: now - 659, lifetime: 600 }));
      await expectCode(
        await submit(await k8sToken({ iat: now - 661, lifetime: 600 })),
        401,
        'CS_TOKEN_EXPIRED',
      );
      await expectCode(await submit(await k8sToken({ claims: { exp: undefined } })), 401, 'CS_TOKEN_INVALID');
    });

    it('B2 G1 nbf 59 s ahead is accepted, 61 s ahead is 401; iat 61 s ahead is 401', async () => {
      const now = Math.floor(h.clock.now() / 1000);
      await accepted(await k8sToken({ claims: { nbf: now + 59 } }));
      await expectCode(await submit(await k8sToken({ claims: { nbf: now + 61 } })), 401, 'CS_TOKEN_INVALID');
      await expectCode(await submit(await k8sToken({ iat: now + 61 })), 401, 'CS_TOKEN_INVALID');
    });

    it('B2 a lifetime beyond max_token_lifetime (24 h by default) is 401', async () => {
      await expectCode(await submit(await k8sToken({ lifetime: 86_401 })), 401, 'CS_TOKEN_INVALID');
    });
  });

  describe('B3 audience, issuer, subject', () => {
    it('B3 a wrong audience and a multi-audience token are 401', async () => {
      const now = h.clock.now();
      const claims = kubernetesClaims(K8S, AUD, 'payments', 'invoice-bot');
      await expectCode(
        await submit(await mint(k8sKey, now, { ...claims, aud: ['https://vault.acme.dev'] })),
        401,
        'CS_TOKEN_INVALID',
      );
      await expectCode(
        await submit(await mint(k8sKey, now, { ...claims, aud: [AUD, 'https://vault.acme.dev'] })),
        401,
        'CS_TOKEN_INVALID',
      );
    });

    it('B3 an issuer that is not configured is 401 CS_ISSUER_UNTRUSTED; a configured issuer with another key is 401', async () => {
      const claims = kubernetesClaims('https://evil.example', AUD, 'payments', 'invoice-bot');
      await expectCode(await submit(await mint(attacker, h.clock.now(), claims)), 401, 'CS_ISSUER_UNTRUSTED');
      // The iss claim of the SPIFFE issuer, signed by the Kubernetes key: wrong keys for it.
      await expectCode(
        await submit(
          await mint(
            k8sKey,
            h.clock.now(),
            svidClaims(SPIRE, AUD, 'spiffe://acme.dev/ns/payments/sa/invoice-bot'),
          ),
        ),
        401,
        'CS_TOKEN_INVALID',
      );
    });

    it('B3 subjects outside the pinned namespace, trust domain or repository are 401; an unbound subject is 401 CS_IDENTITY_UNBOUND', async () => {
      await expectCode(
        await submit(await k8sToken({}, 'kube-system', 'invoice-bot')),
        401,
        'CS_TOKEN_INVALID',
      );
      await expectCode(
        await submit(await k8sToken({ claims: { 'kubernetes.io': { namespace: 'kube-system' } } })),
        401,
        'CS_TOKEN_INVALID',
      );
      await expectCode(
        await submit(await k8sToken({}, 'payments', 'someone-else')),
        401,
        'CS_IDENTITY_UNBOUND',
      );
      await expectCode(
        await submit(
          await mint(
            svidKey,
            h.clock.now(),
            svidClaims(SPIRE, AUD, 'spiffe://evil.dev/ns/payments/sa/invoice-bot'),
          ),
        ),
        401,
        'CS_TOKEN_INVALID',
      );
      await expectCode(
        await submit(
          await mint(ghKey, h.clock.now(), githubClaims(AUD, 'acme/other-repo', 'production'), {
            header: { typ: 'JWT' },
          }),
        ),
        401,
        'CS_TOKEN_INVALID',
      );
      await expectCode(
        await submit(
          await mint(ghKey, h.clock.now(), githubClaims(AUD, 'acme/payments', 'dev'), {
            header: { typ: 'JWT' },
          }),
        ),
        401,
        'CS_TOKEN_INVALID',
      );
    });
  });

  it('B4 alg none / None / NONE with an empty or junk signature is 401 before any key use', async () => {
    const before = host.fetches.k8s ?? 0;
    const payload = b64url(
      JSON.stringify({ ...kubernetesClaims(K8S, AUD, 'payments', 'invoice-bot'), exp: 4_000_000_000 }),
    );
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const header = b64url(JSON.stringify({ alg, kid: 'k8s-1' }));
      await expectCode(await submit(`${header}.${payload}.`), 401, 'CS_TOKEN_INVALID');
      await expectCode(await submit(`${header}.${payload}.${b64url('x')}`), 401, 'CS_TOKEN_INVALID');
    }
    expect(host.fetches.k8s ?? 0).toBe(before);
  });

  it('B5 HS256 signed with the issuer public key (PEM, PEM with leading whitespace, JWK JSON, modulus) is 401', async () => {
    const pem = await exportSPKI((await importJWK(k8sKey.publicJwk, 'RS256')) as CryptoKey);
    const secrets = [
      pem,
      `\n${pem}`,
      ` ${pem}`,
      JSON.stringify(k8sKey.publicJwk),
      String(k8sKey.publicJwk.n),
    ];
    for (const secret of secrets) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const token = await new SignJWT({ ...kubernetesClaims(K8S, AUD, 'payments', 'invoice-bot') })
          .setProtectedHeader({ alg, kid: 'k8s-1' })
          .setIssuedAt(Math.floor(h.clock.now() / 1000))
          .setExpirationTime(Math.floor(h.clock.now() / 1000) + 600)
          .sign(new TextEncoder().encode(secret));
        await expectCode(await submit(token), 401, 'CS_TOKEN_INVALID');
      }
    }
    // An asymmetric algorithm outside the issuer's allow-list is refused too (ES256 for an RS256 issuer).
    const es = await newSigningKey('ES256', 'k8s-1');
    await expectCode(await submit(await k8sToken({ key: es })), 401, 'CS_TOKEN_INVALID');
  });

  describe('B6 header abuse', () => {
    it('B6 jku / x5u / embedded jwk naming an attacker key are ignored: 401 and nothing is fetched from them', async () => {
      const jwksUrl = host.url('/attacker/jwks');
      const before = host.fetches.attacker ?? 0;
      for (const header of [
        { jku: jwksUrl },
        { x5u: host.url('/attacker/cert.pem') },
        { jwk: attacker.publicJwk },
        { jku: jwksUrl, jwk: attacker.publicJwk, kid: 'attacker' },
      ]) {
        await expectCode(await submit(await k8sToken({ key: attacker, header })), 401, 'CS_TOKEN_INVALID');
      }
      expect(host.fetches.attacker ?? 0).toBe(before);
      expect(host.requests.filter((p) => p.startsWith('/attacker'))).toEqual([]);
    });

    it('B6 kid with path or SQL payloads only looks up a key: attacker-signed 401, agents table intact', async () => {
      for (const kid of [
        '../../../../dev/null',
        "' OR '1'='1",
        'k8s-1; DROP TABLE agents;--',
        'x'.repeat(2000),
      ]) {
        await expectCode(
          await submit(await k8sToken({ key: attacker, header: { kid } })),
          401,
          'CS_TOKEN_INVALID',
        );
      }
      expect((await h.server.deps.ctx.store.listAgents()).length).toBeGreaterThanOrEqual(5);
    });

    it('B6 an unknown crit extension is 401 even with the genuine signature', async () => {
      // jose will not sign an unknown crit, so the genuine key signs these bytes directly.
      const signRaw = (header: Record<string, unknown>) => {
        const claims = {
          ...kubernetesClaims(K8S, AUD, 'payments', 'invoice-bot'),
          iat: Math.floor(h.clock.now() / 1000),
          exp: Math.floor(h.clock.now() / 1000) + 600,
        };
        const input = `${b64url(JSON.stringify({ alg: 'RS256', kid: 'k8s-1', ...header }))}.${b64url(JSON.stringify(claims))}`;
        const sig = cryptoSign('sha256', Buffer.from(input), KeyObject.from(k8sKey.privateKey));
        return `${input}.${sig.toString('base64url')}`;
      };
      // Control: the same construction without crit is accepted.
      await accepted(signRaw({}));
      for (const header of [
        { crit: ['urn:acme:x'], 'urn:acme:x': true },
        { crit: ['exp'] },
        { crit: [] },
        { crit: 'urn:acme:x' },
      ]) {
        await expectCode(await submit(signRaw(header)), 401, 'CS_TOKEN_INVALID');
      }
    });

    it('B6 typ of another kind signed by the real issuer key (at+jwt, dpop+jwt, receipt) is 401 for a Kubernetes issuer', async () => {
      for (const typ of [
        'at+jwt',
        'application/at+jwt',
        'dpop+jwt',
        'countersign-receipt+jwt',
        'JOSE+JSON',
      ]) {
        await expectCode(await submit(await k8sToken({ header: { typ } })), 401, 'CS_TOKEN_INVALID');
      }
      // GitHub tokens always say typ JWT: none at all is refused for that kind.
      await expectCode(
        await submit(await mint(ghKey, h.clock.now(), githubClaims(AUD, 'acme/payments', 'production'))),
        401,
        'CS_TOKEN_INVALID',
      );
    });

    it('B6 each of our own token kinds (lease at+jwt, approval receipt) is refused by the workload verifier', async () => {
      const ok = await accepted(await k8sToken());
      expect(ok.status).toBe('allowed');
      const lease: string = ok.credential.access_token;
      await expectCode(await submit(lease), 401, 'CS_ISSUER_UNTRUSTED');
      const receipt = await h.server.deps.ctx.receipts.sign({
        request_id: 'req_x',
        agent_id: 'invoice-bot',
        verdict: 'approve',
      });
      await expectCode(await submit(receipt), 401, 'CS_ISSUER_UNTRUSTED');
      // Re-headed as a plain JWT, our signature no longer matches anything an agent has.
      const [, payload, sig] = lease.split('.') as [string, string, string];
      await expectCode(
        await submit(`${b64url(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' }))}.${payload}.${sig}`),
        401,
        ['CS_ISSUER_UNTRUSTED', 'CS_TOKEN_INVALID'],
      );
    });
  });

  it('B11 a reviewer session (cookie or its token as a bearer) is refused at every agent endpoint', async () => {
    const token = await insertReviewerSession(h.server.deps.ctx, 'b11');
    // Control: the session is a real one, the console accepts it.
    const me = await h.call('GET', '/v1/console/me', { headers: { cookie: `cs_session=${token}` } });
    expect(me.status).toBe(200);
    for (const [method, path] of [
      ['POST', '/v1/access-requests'],
      ['GET', '/v1/access-requests/req_x'],
      ['POST', '/v1/access-requests/req_x/withdraw'],
      ['POST', '/v1/tasks/task-1/complete'],
    ] as const) {
      const withCookie = await h.call(method, path, {
        headers: { cookie: `cs_session=${token}` },
        ...(method === 'POST' && path === '/v1/access-requests' ? { body: body() } : {}),
      });
      expect(withCookie.status, `${method} ${path}`).toBe(401);
      const asBearer = await h.call(method, path, {
        token,
        ...(method === 'POST' && path === '/v1/access-requests' ? { body: body() } : {}),
      });
      expect(asBearer.status, `${method} ${path}`).toBe(401);
    }
  });

  describe('B12 lifecycle', () => {
    it('B12 a suspended workload agent is 401 CS_AGENT_SUSPENDED at once; a forged token for it stays CS_TOKEN_INVALID', async () => {
      await register('doomed-bot', K8S, 'system:serviceaccount:payments:doomed-bot');
      const token = await k8sToken({}, 'payments', 'doomed-bot');
      await accepted(token);
      await suspendAgent({
        ctx: h.server.deps.ctx,
        actor: { type: 'operator', id: 'test' },
        input: { agentId: 'doomed-bot' },
      });
      await expectCode(await submit(token), 401, 'CS_AGENT_SUSPENDED');
      await expectCode(
        await submit(await k8sToken({ key: attacker }, 'payments', 'doomed-bot')),
        401,
        'CS_TOKEN_INVALID',
      );
    });

    it('B12 an agent past its registration expiry is 401 CS_AGENT_EXPIRED', async () => {
      await registerWorkloadAgent(h.server.deps.ctx, {
        id: 'temp-bot',
        issuer: K8S,
        subject: 'system:serviceaccount:payments:temp-bot',
        expiresAt: h.clock.now() + 60_000,
      });
      await accepted(await k8sToken({}, 'payments', 'temp-bot'));
      h.clock.advance(61);
      await expectCode(await submit(await k8sToken({}, 'payments', 'temp-bot')), 401, 'CS_AGENT_EXPIRED');
    });
  });

  describe('B13 identity reuse', () => {
    it('B13 a second registration of the same issuer and subject is refused (CS_IDENTITY_EXISTS), in one transaction', async () => {
      const before = (await h.server.deps.ctx.store.listAgents()).length;
      await expect(
        register('impostor-bot', K8S, 'system:serviceaccount:payments:invoice-bot'),
      ).rejects.toMatchObject({
        code: 'CS_IDENTITY_EXISTS',
      });
      expect((await h.server.deps.ctx.store.listAgents()).length).toBe(before);
      // The same subject under another issuer is another identity.
      await register('other-cluster-bot', FAST, 'system:serviceaccount:payments:invoice-bot');
    });

    it('B13 a staging identity asking to write a production resource is denied by policy', async () => {
      const token = await k8sToken({}, 'staging', 'invoice-bot');
      const res = await submit(token, {}, body({ action: 'write', resource: 'postgres://prod/app/orders' }));
      const json = (await res.json()) as { status: string };
      expect(res.status).toBe(201);
      expect(json.status).toBe('denied');
    });
  });
});

describe('B7 JWKS rotation and outage', () => {
  const fastToken = (key: SigningKeyPair) =>
    mint(key, h.clock.now(), kubernetesClaims(FAST, AUD, 'payments', 'fast-bot'));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('B7 a flood of 10,000 unknown-kid tokens causes at most one JWKS fetch per cooldown', async () => {
    await accepted(await k8sToken());
    const before = host.fetches.k8s ?? 0;
    const started = Date.now();
    const claims = kubernetesClaims(K8S, AUD, 'payments', 'invoice-bot');
    // One signature, many kids: the kid is all that differs between flood tokens.
    const tokens = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        mint(attacker, h.clock.now(), claims, { header: { kid: `rand-${i}-${Math.random()}` } }),
      ),
    );
    let refused = 0;
    for (let round = 0; round < 100; round++) {
      const results = await Promise.all(
        tokens.map((t) =>
          submit(
            t.replace(/^[^.]+/, (hd) => {
              const header = JSON.parse(Buffer.from(hd, 'base64url').toString());
              return b64url(JSON.stringify({ ...header, kid: `${header.kid}-${round}` }));
            }),
          ),
        ),
      );
      for (const r of results) {
        expect(r.status).toBe(401);
        refused++;
      }
    }
    expect(refused).toBe(10_000);
    const elapsedCooldowns = Math.floor((Date.now() - started) / 30_000) + 1;
    const fetched = (host.fetches.k8s ?? 0) - before;
    console.log(
      `B7 flood: 10,000 unknown-kid tokens in ${Date.now() - started} ms, ${fetched} JWKS fetch(es)`,
    );
    expect(fetched).toBeLessThanOrEqual(elapsedCooldowns);
  }, 120_000);

  it('B7 rotation: a new kid is accepted after one refetch; a removed key stops verifying after the cache age; an outage past the cache age fails closed (503) and /healthz names the issuer; recovery works', async () => {
    await accepted(await fastToken(fastA));
    const f0 = host.fetches.fast ?? 0;
    // Rotate in B (A still published): after the cooldown a B token triggers one refetch.
    host.setKeys('fast', [fastA.publicJwk, fastB.publicJwk]);
    await sleep(1100);
    await accepted(await fastToken(fastB));
    expect((host.fetches.fast ?? 0) - f0).toBe(1);
    // Remove A: once the cache is older than max_age, A no longer verifies.
    host.setKeys('fast', [fastB.publicJwk]);
    await sleep(1100);
    await expectCode(await submit(await fastToken(fastA)), 401, 'CS_TOKEN_INVALID');
    await accepted(await fastToken(fastB));
    // Outage: past the cache age every call for this issuer is 503, nothing is decided.
    host.down('fast');
    await sleep(1100);
    const before = dbCounts(h);
    await expectCode(await submit(await fastToken(fastB)), 503, 'CS_IDENTITY_UNAVAILABLE');
    await expectCode(await submit(await fastToken(fastB)), 503, 'CS_IDENTITY_UNAVAILABLE');
    // Fail closed with no effect: no request recorded, no lease issued.
    expect(dbCounts(h)).toEqual(before);
    const health = (await (await h.call('GET', '/healthz')).json()) as any;
    expect(health.status).toBe('degraded');
    expect(health.checks[`identity:${FAST}`]).toMatch(
      /^unavailable: keys unavailable since .*503|unavailable: .*200 OK/,
    );
    // Agents of other issuers are unaffected.
    await accepted(await k8sToken());
    // Recovery: keys served again, after the cooldown the next call fetches and succeeds.
    host.up('fast');
    await sleep(1100);
    await accepted(await fastToken(fastB));
    const healthy = (await (await h.call('GET', '/healthz')).json()) as any;
    expect(healthy.checks[`identity:${FAST}`]).toMatch(/^ok/);
  }, 30_000);

  it('B7 SPIFFE bundle rotation: a new jwt-svid key is picked up when the bundle file changes; the old one stops', async () => {
    const next = await newSigningKey('ES256', 'svid-2');
    const svid = (k: SigningKeyPair) =>
      mint(k, h.clock.now(), svidClaims(SPIRE, AUD, 'spiffe://acme.dev/ns/payments/sa/invoice-bot'));
    await accepted(await svid(svidKey));
    await expectCode(await submit(await svid(next)), 401, 'CS_TOKEN_INVALID');
    await sleep(20); // a distinct mtime
    writeBundle([next]);
    await accepted(await svid(next));
    await expectCode(await submit(await svid(svidKey)), 401, 'CS_TOKEN_INVALID');
  });
});
