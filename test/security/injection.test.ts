/**
 * Injection through every agent-controlled string that reaches the store (THREATS.md F1):
 * path ids, the Idempotency-Key header, task ids, resources, actions, query parameters and
 * the OAuth endpoints' credentials and form fields. Never a 5xx, never an allow, and the
 * schema is intact afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness, type TestAgent } from '../support/harness.js';
import { dbCounts, expectRefused, readJson, refusal, tableNames } from './attack-kit.js';

const SQL = [
  "' OR 1=1 --",
  "' OR '1'='1",
  '"; DROP TABLE leases; --',
  "'; DROP TABLE access_requests; --",
  '1; DELETE FROM audit_events WHERE 1=1; --',
  "req_x' UNION SELECT id, public_jwk FROM agents --",
  "x') OR ('a'='a",
  "\\\"; ATTACH DATABASE '/tmp/pwn.db' AS pwn; --",
  '%27%20OR%201%3D1%20--',
  "' OR 1=1 /*",
  '1 OR sleep(5)',
  "'||(SELECT name FROM sqlite_master)||'",
  '\u0000; DROP TABLE tasks',
];
/** Payloads that happen to fit the identifier grammar: they must reach the store as plain values. */
const SQL_SHAPED_IDENTIFIERS = ['a=a--', 'x:1=1', 'req_1--', '1=1', 'a/../b', 'agents', 'sqlite_master'];

describe('F1 injection via path ids, headers, body fields and OAuth forms', () => {
  let h: Harness;
  let agent: TestAgent;
  let tables: string[];
  let allowedId: string;
  beforeAll(async () => {
    h = await startHarness();
    agent = await h.addAgent('spiffe://acme.dev/agent/sqli-bot', { owner: 'app' });
    tables = tableNames(h);
    expect(tables).toEqual(
      expect.arrayContaining(['access_requests', 'leases', 'agents', 'audit_events', 'token_ids']),
    );
    const first = await h.requestAccess(agent, body());
    expect(first.status).toBe(201);
    allowedId = first.json.id;
  });
  afterAll(async () => h.close());

  /** Never 5xx, never a credential: the universal F1 invariant. */
  async function neverFiveHundredNorAllow(res: Response, label: string) {
    const r = await refusal(res);
    expect(r.status, `${label}: ${r.text}`).toBeLessThan(500);
    return r;
  }

  it('F1 SQL payloads in the path id of GET /v1/access-requests/:id are 400 CS_INVALID_IDENTIFIER', async () => {
    for (const payload of SQL) {
      const res = await h.call('GET', `/v1/access-requests/${encodeURIComponent(payload)}`, { agent });
      const r = await neverFiveHundredNorAllow(res, payload);
      expect([400, 404], payload).toContain(r.status);
      expect(['CS_INVALID_IDENTIFIER', 'CS_NOT_FOUND']).toContain(r.code);
    }
  });

  it('F1 SQL-shaped ids that fit the identifier grammar are just unknown ids: 404 CS_NOT_FOUND', async () => {
    for (const payload of SQL_SHAPED_IDENTIFIERS) {
      const res = await h.call('GET', `/v1/access-requests/${encodeURIComponent(payload)}`, { agent });
      await expectRefused(res, 404, 'CS_NOT_FOUND');
    }
  });

  it('F1 SQL payloads in POST /v1/access-requests/:id/withdraw are refused and withdraw nothing', async () => {
    for (const payload of [...SQL, ...SQL_SHAPED_IDENTIFIERS]) {
      const res = await h.call('POST', `/v1/access-requests/${encodeURIComponent(payload)}/withdraw`, {
        agent,
      });
      const r = await neverFiveHundredNorAllow(res, payload);
      expect([400, 404], payload).toContain(r.status);
      expect(['CS_INVALID_IDENTIFIER', 'CS_NOT_FOUND']).toContain(r.code);
    }
    // The one real request is untouched.
    const res = await h.call('GET', `/v1/access-requests/${allowedId}`, { agent });
    expect(res.status).toBe(200);
    expect((await readJson(res)).status).toBe('allowed');
  });

  it('F1 raw (unencoded) payloads in the path never reach a 5xx', async () => {
    for (const payload of [
      "'OR'1'='1",
      '";DROP%20TABLE%20leases;--',
      '..%2f..%2fagents',
      '%00',
      '%ZZ',
      '%E0%A4%A',
    ]) {
      for (const [method, path] of [
        ['GET', `/v1/access-requests/${payload}`],
        ['POST', `/v1/access-requests/${payload}/withdraw`],
        ['POST', `/v1/tasks/${payload}/complete`],
      ] as const) {
        const res = await h.call(method, path, { agent });
        await neverFiveHundredNorAllow(res, `${method} ${path}`);
      }
    }
  });

  it('F1 SQL payloads in the Idempotency-Key header are 400 CS_INVALID_REQUEST before any effect', async () => {
    const before = dbCounts(h);
    for (const payload of SQL.filter((p) => !p.includes('\u0000'))) {
      const res = await h.call('POST', '/v1/access-requests', {
        agent,
        body: body(),
        headers: { 'idempotency-key': payload },
      });
      await expectRefused(res, 400, 'CS_INVALID_REQUEST');
    }
    const after = dbCounts(h);
    expect(after.requests).toBe(before.requests);
    expect(after.leases).toBe(before.leases);
    // An SQL-shaped key inside the allowed alphabet is stored as a value and replays normally.
    const key = 'x--1:OR:1';
    const a = await h.requestAccess(agent, body(), { 'idempotency-key': key });
    const b = await h.requestAccess(agent, body(), { 'idempotency-key': key });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.json.id).toBe(a.json.id);
    expect(b.json.credential).toBeUndefined();
  });

  it('F1 SQL payloads in task ids (body and path) are refused with 400', async () => {
    const before = dbCounts(h);
    for (const payload of SQL) {
      const res = await h.call('POST', '/v1/access-requests', {
        agent,
        body: body({ intent: { purpose: 'p', task_id: payload } }),
      });
      await expectRefused(res, 400, 'CS_INVALID_REQUEST');
      const complete = await h.call('POST', `/v1/tasks/${encodeURIComponent(payload)}/complete`, { agent });
      await expectRefused(complete, 400, 'CS_INVALID_IDENTIFIER');
    }
    expect(dbCounts(h).requests).toBe(before.requests);
  });

  it('F1 SQL payloads in resource, action, ticket, on_behalf_of and purpose are refused or inert', async () => {
    const before = dbCounts(h);
    for (const payload of SQL) {
      await expectRefused(
        await h.call('POST', '/v1/access-requests', { agent, body: body({ resource: payload }) }),
        400,
        ['CS_INVALID_RESOURCE', 'CS_INVALID_REQUEST'],
      );
      await expectRefused(
        await h.call('POST', '/v1/access-requests', {
          agent,
          body: body({ resource: `postgres://staging/app/${payload}` }),
        }),
        400,
        ['CS_INVALID_RESOURCE', 'CS_INVALID_REQUEST'],
      );
      await expectRefused(
        await h.call('POST', '/v1/access-requests', { agent, body: body({ action: payload }) }),
        400,
        ['CS_INVALID_IDENTIFIER', 'CS_INVALID_REQUEST'],
      );
      await expectRefused(
        await h.call('POST', '/v1/access-requests', {
          agent,
          body: body({ intent: { purpose: 'p', task_id: 't', ticket: payload } }),
        }),
        400,
        'CS_INVALID_REQUEST',
      );
      await expectRefused(
        await h.call('POST', '/v1/access-requests', {
          agent,
          body: body({ context: { on_behalf_of: payload } }),
        }),
        400,
        'CS_INVALID_REQUEST',
      );
    }
    expect(dbCounts(h).requests).toBe(before.requests);
    // Free text is stored as a value: the decision is the control decision, the text comes back verbatim.
    for (const payload of SQL.filter((p) => !p.includes('\u0000'))) {
      const { status, json } = await h.requestAccess(
        agent,
        body({ intent: { purpose: payload, task_id: 'sqli' } }),
      );
      expect(status).toBe(201);
      expect(json.status).toBe('allowed');
      const res = await h.call('GET', `/v1/access-requests/${json.id}`, { agent });
      expect((await readJson(res)).id).toBe(json.id);
    }
  });

  it('F1 SQL payloads in the wait query parameter are 400 CS_INVALID_REQUEST', async () => {
    for (const wait of [
      '1; DROP TABLE leases',
      "1' OR '1'='1",
      '1 OR 1=1',
      '-1',
      '61',
      '1e400',
      '1.5',
      'NaN',
    ]) {
      const res = await h.call('GET', `/v1/access-requests/${allowedId}?wait=${encodeURIComponent(wait)}`, {
        agent,
      });
      const r = await neverFiveHundredNorAllow(res, wait);
      expect(r.status, wait).toBe(400);
      expect(r.code, wait).toBe('CS_INVALID_REQUEST');
    }
    // No Number() quirks either: '' and '0x10' are refused, not read as 0 and 16.
    for (const wait of ['', '0x10', ' 1 ']) {
      const res = await h.call('GET', `/v1/access-requests/${allowedId}?wait=${encodeURIComponent(wait)}`, {
        agent,
      });
      const r = await neverFiveHundredNorAllow(res, wait);
      expect(r.status, wait).toBe(400);
    }
  });

  it('F1 SQL payloads as the token in /oauth/introspect and /oauth/revoke are inert', async () => {
    for (const payload of SQL) {
      const form = `token=${encodeURIComponent(payload)}`;
      const headers = { 'content-type': 'application/x-www-form-urlencoded' };
      const intro = await h.call('POST', '/oauth/introspect', { agent, rawBody: form, headers });
      expect(intro.status).toBe(200);
      expect(await readJson(intro)).toEqual({ active: false });
      const revoke = await h.call('POST', '/oauth/revoke', { agent, rawBody: form, headers });
      expect(revoke.status).toBe(200);
    }
    expect(dbCounts(h).leases).toBeGreaterThan(0);
  });

  it('F1 SQL payloads as HTTP Basic resource-server credentials are 401', async () => {
    for (const payload of SQL) {
      for (const pair of [`${payload}:x`, `rs:${payload}`]) {
        const basic = Buffer.from(pair).toString('base64');
        const res = await h.call('POST', '/oauth/introspect', {
          rawBody: 'token=x',
          headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        });
        const r = await neverFiveHundredNorAllow(res, pair);
        expect(r.status, pair).toBe(401);
        expect(r.code).toBe('CS_UNAUTHENTICATED');
      }
    }
  });

  it('R1 malformed percent-encoding in HTTP Basic credentials is 401 CS_UNAUTHENTICATED, not a 500', async () => {
    // routes/oauth.ts calls decodeURIComponent on the Basic user and password outside any
    // try: a URIError escapes as an internal error.
    for (const pair of ['%:x', 'rs:%', '%E0%A4%A:x', 'rs:%ZZ', '%C0%80:%FF']) {
      const basic = Buffer.from(pair).toString('base64');
      for (const path of ['/oauth/introspect', '/oauth/revoke']) {
        const res = await h.call('POST', path, {
          rawBody: 'token=x',
          headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        });
        const r = await refusal(res);
        expect(r.status, `${path} ${pair}: ${r.text}`).toBe(401);
        expect(r.code).toBe('CS_UNAUTHENTICATED');
      }
    }
  });

  it('F1 afterwards every table still exists, the agent still exists, and a normal request still succeeds', async () => {
    expect(tableNames(h)).toEqual(tables);
    const { status, json } = await h.requestAccess(agent, body());
    expect(status).toBe(201);
    expect(json.status).toBe('allowed');
    expect(json.credential.access_token).toMatch(/^ey/);
    const audit = await h.server.deps.ctx.store.read((tx) => tx.getAgent(agent.id));
    expect(audit?.id).toBe(agent.id);
  });
});
