/**
 * The postgres_role issuer against the machine's real PostgreSQL: what a role can and cannot
 * do, how it dies, and the attacks on issuance (THREATS.md C1, C4, C6, H1, F1, INV-1).
 */

import { createHash, createHmac } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MINT_GRACE_SECONDS, suspendAgent } from '@countersign/core';
import { scramSha256Verifier } from '@countersign/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb } from '../support/db.js';
import { type Harness, startHarness, type TestAgent, TestClock } from '../support/harness.js';
import { admin, connectAs, rolesWithPrefix } from '../support/postgres.js';
import { postgresKind } from './kinds.js';

const WRITE_POLICY = `
@id("test-write-local-staging")
@reason("test: writes to the local staging database are routine")
permit (principal, action in [Countersign::Action::"write", Countersign::Action::"delete"], resource)
when { resource.catalogued && resource.environment == "staging" };
`;

async function sqlError(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    return String((error as { code?: string }).code);
  }
  return 'ok';
}

async function auditTypes(h: Harness, leaseId: string): Promise<string[]> {
  const types: string[] = [];
  for await (const e of h.server.deps.ctx.store.auditEvents())
    if (e.data.lease_id === leaseId) types.push(e.type);
  return types;
}

describe('postgres_role issuer', () => {
  const kind = postgresKind();
  let h: Harness;
  let agent: TestAgent;
  let task = 0;
  const configure = (home: string) => {
    kind.configure(home);
    writeFileSync(join(home, 'policies', 'test-writes.cedar'), WRITE_POLICY);
  };

  beforeEach(async () => {
    await kind.setup!();
    h = await startHarness({ configure });
    agent = await h.addAgent('spiffe://acme.dev/agent/pg', { environment: 'staging' });
  });
  afterEach(async () => {
    await h?.close();
    for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
    await kind.teardown!();
  });

  const homes: string[] = [];
  /** The process dies and another starts on the same data directory. */
  async function restart(clock: TestClock, close = true) {
    if (close) await h.close({ keepHome: true });
    homes.push(h.home);
    h = await startHarness({ home: h.home, clock, configure: () => {} });
  }

  async function ask(action: string, resource = kind.resource, ttl = 300) {
    const taskId = `task-${++task}`;
    const res = await h.requestAccess(agent, {
      action,
      resource,
      intent: { purpose: 'postgres tests', task_id: taskId },
      ttl_seconds: ttl,
    });
    return { ...res, taskId };
  }

  it('C6 a read role may SELECT its one table and nothing else: no writes, no other table, no DDL, no temp tables, no other database', async () => {
    const { json } = await ask('read');
    expect(json.status).toBe('allowed');
    const c = json.credential;
    expect(c).toMatchObject({ type: 'postgres_role', host: '127.0.0.1', port: 5432, database: kind.dbs.db });
    expect(c.user).toMatch(new RegExp(`^${kind.dbs.rolePrefix}[0-9a-f]{24}$`));
    const s = await connectAs(c);
    try {
      expect((await s.query('SELECT note FROM public.orders ORDER BY id')).rows).toEqual([
        { note: 'first' },
        { note: 'second' },
      ]);
      // 42501 insufficient_privilege, every time.
      expect(await sqlError(s.query("INSERT INTO public.orders (note) VALUES ('x')"))).toBe('42501');
      expect(await sqlError(s.query("UPDATE public.orders SET note = 'x'"))).toBe('42501');
      expect(await sqlError(s.query('DELETE FROM public.orders'))).toBe('42501');
      expect(await sqlError(s.query('SELECT * FROM public.payroll'))).toBe('42501');
      expect(await sqlError(s.query('SELECT * FROM billing.invoices'))).toBe('42501');
      expect(await sqlError(s.query('CREATE TABLE public.mine (x int)'))).toBe('42501');
      expect(await sqlError(s.query('CREATE SCHEMA mine'))).toBe('42501');
      expect(await sqlError(s.query('CREATE TEMP TABLE scratch (x int)'))).toBe('42501');
      expect(await sqlError(s.query('TRUNCATE public.orders'))).toBe('42501');
      expect(await sqlError(s.query(`CREATE ROLE ${c.user}_friend`))).toBe('42501');
      expect(await sqlError(s.query(`ALTER ROLE ${c.user} VALID UNTIL 'infinity'`))).toBe('42501');
    } finally {
      await s.end();
    }
    // 42501: no CONNECT on the other database (closed to PUBLIC, as docs/credentials.md tells
    // operators to; a database left open to PUBLIC is open to every role, this one included).
    expect(await sqlError(connectAs(c, kind.dbs.other))).toBe('42501');
  });

  it('C6 a write role gets INSERT and UPDATE on its table, exactly the template', async () => {
    const { json } = await ask('write', `postgres://local/${kind.dbs.db}/billing.invoices`);
    expect(json.status).toBe('allowed');
    const s = await connectAs(json.credential);
    try {
      await s.query('INSERT INTO billing.invoices (total) VALUES (42)');
      await s.query('UPDATE billing.invoices SET total = 43');
      expect(await sqlError(s.query('SELECT * FROM billing.invoices'))).toBe('42501');
      expect(await sqlError(s.query('DELETE FROM billing.invoices'))).toBe('42501');
      expect(await sqlError(s.query("INSERT INTO public.orders (note) VALUES ('x')"))).toBe('42501');
    } finally {
      await s.end();
    }
    expect(
      await admin(kind.dbs.db, async (a) => (await a.query('SELECT total FROM billing.invoices')).rows),
    ).toEqual([{ total: 43 }]);
  });

  it("the role is LOGIN only, VALID UNTIL the lease expiry, and PostgreSQL holds a SCRAM verifier of the agent's password, never the password", async () => {
    const { json } = await ask('read', kind.resource, 120);
    const c = json.credential;
    const row = await admin(
      'postgres',
      async (a) =>
        (
          await a.query(
            `SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
                  rolbypassrls, rolconnlimit, rolvaliduntil, rolpassword
             FROM pg_authid WHERE rolname = $1`,
            [c.user],
          )
        ).rows[0],
    );
    expect(row).toMatchObject({
      rolsuper: false,
      rolinherit: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolcanlogin: true,
      rolreplication: false,
      rolbypassrls: false,
      rolconnlimit: 5,
    });
    expect(new Date(row.rolvaliduntil).toISOString()).toBe(c.expires_at);
    expect(new Date(c.expires_at).getTime()).toBe(h.clock.now() + 120_000);
    const stored: string = row.rolpassword;
    expect(stored).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(stored).not.toContain(c.password);
    const salt = Buffer.from(stored.split('$')[1]!.split(':')[1]!, 'base64');
    expect(await scramSha256Verifier(c.password, salt)).toBe(stored);
    expect(await scramSha256Verifier(`${c.password}x`, salt)).not.toBe(stored);
  });

  it('the SCRAM-SHA-256 derivation matches RFC 7677 §3 (user "user", password "pencil")', async () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const verifier = await scramSha256Verifier('pencil', salt, 4096);
    const [, , keys] = verifier.split('$');
    const [storedKey, serverKey] = keys!.split(':').map((k: string) => Buffer.from(k, 'base64'));
    const authMessage =
      'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    // The server's signature from the RFC proves ServerKey; the client's proof proves StoredKey.
    expect(createHmac('sha256', serverKey!).update(authMessage).digest('base64')).toBe(
      '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    );
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const signature = createHmac('sha256', storedKey!).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
    expect(createHash('sha256').update(clientKey).digest().equals(storedKey!)).toBe(true);
  });

  it("C1 completing the task terminates the role's open session and drops it: it cannot connect again", async () => {
    const { json, taskId } = await ask('read');
    const session = await connectAs(json.credential);
    expect((await session.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const res = await h.call('POST', `/v1/tasks/${taskId}/complete`, { agent });
    expect(((await res.json()) as any).pending_revocations).toEqual([]);
    // 57P01 admin_shutdown: pg_terminate_backend ended the session the agent kept open.
    expect(await sqlError(session.query('SELECT 1'))).toMatch(/57P01|undefined/);
    await session.end().catch(() => {});
    expect(await sqlError(connectAs(json.credential))).toBe('28000');
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toEqual([]);
  });

  it('C1 at its TTL the reaper terminates an open session and drops the role (VALID UNTIL alone ends no session)', async () => {
    const { json } = await ask('read', kind.resource, 60);
    const session = await connectAs(json.credential);
    h.clock.advance(30);
    expect((await h.server.reapLeases()).expired).toBe(0);
    expect((await session.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    h.clock.advance(31);
    const pass = await h.server.reapLeases();
    expect(pass).toMatchObject({ expired: 1, confirmed: [json.lease_id] });
    expect(await sqlError(session.query('SELECT 1'))).not.toBe('ok');
    await session.end().catch(() => {});
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toEqual([]);
    expect(await auditTypes(h, json.lease_id)).toEqual([
      'lease.intent',
      'lease.issued',
      'lease.expired',
      'lease.revoked',
    ]);
  });

  it('INV-1 H1 nothing is created in PostgreSQL unless the decision, the lease intent and their audit events committed', async () => {
    const db = openDb(h.home);
    db.exec(
      "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    );
    db.close();
    const { status, json } = await ask('read');
    expect(status).toBe(503);
    expect(json.error.code).toBe('CS_AUDIT_WRITE_FAILED');
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toEqual([]);
    expect(JSON.stringify(json)).not.toContain('password');
  });

  it('H1 a role minted but never committed active is withheld from the agent and removed after a restart', async () => {
    const db = openDb(h.home);
    // The fault hits between minting and the `issuing → active` commit (its lease.issued event).
    db.exec(
      "CREATE TRIGGER issued_down BEFORE INSERT ON audit_events WHEN NEW.type = 'lease.issued' BEGIN SELECT RAISE(ABORT, 'crash'); END",
    );
    db.close();
    const { status, json } = await ask('read');
    expect(status).toBe(503);
    expect(JSON.stringify(json)).not.toMatch(/password|"user"/);
    const minted = await rolesWithPrefix(kind.dbs.rolePrefix);
    expect(minted).toHaveLength(1); // it exists downstream, and nobody holds its password
    const fix = openDb(h.home);
    fix.exec('DROP TRIGGER issued_down');
    const leaseId = (fix.prepare('SELECT id FROM leases').get() as { id: string }).id;
    fix.close();
    // The process dies; another starts on the same data; the intent is past its grace.
    await restart(new TestClock(h.clock.now() + (MINT_GRACE_SECONDS + 1) * 1000));
    const pass = await h.server.reapLeases();
    expect(pass).toMatchObject({ abandonedIntents: 1, confirmed: [leaseId] });
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toEqual([]);
    expect(await auditTypes(h, leaseId)).toEqual(['lease.intent', 'lease.issue_abandoned', 'lease.revoked']);
  });

  it('F1 resource names outside the strict grammar, or for another server, never reach SQL', async () => {
    const db = kind.dbs.db;
    for (const resource of [
      `postgres://local/${db}/orders`,
      `postgres://local/${db}/public.orders.x`,
      `postgres://local/${db}/Public.Orders`,
      `postgres://local/${db}/public.orders;drop`,
      `postgres://local/${db}/public.order$`,
      `postgres://local/${db}/public.orders/x`,
      `postgres://local/${db.toUpperCase()}/public.orders`,
      `postgres://local/${db}/public.${'a'.repeat(64)}`,
    ]) {
      const { status, json } = await ask('read', resource);
      expect(status, resource).toBeLessThan(500);
      if (status === 201) {
        expect(json.status, resource).toBe('denied');
        expect(json.decision.error_code, resource).toBe('CS_ISSUER_UNSUPPORTED');
      } else {
        expect(json.error.code, resource).toMatch(/^CS_INVALID_/);
      }
    }
    // An action without a privilege template is refused too.
    const del = await ask('delete');
    expect(del.json.decision.error_code).toBe('CS_ISSUER_UNSUPPORTED');
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toEqual([]);
  });

  it('a revocation pending when the server stops is completed by the next start (the reaper is durable)', async () => {
    const { json, taskId } = await ask('read');
    await kind.relay.break();
    const res = await h.call('POST', `/v1/tasks/${taskId}/complete`, { agent });
    expect(((await res.json()) as any).pending_revocations).toEqual([json.lease_id]);
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toHaveLength(1);
    await h.close({ keepHome: true });
    await kind.relay.heal();
    await restart(new TestClock(h.clock.now() + 10_000), false);
    expect((await h.server.reapLeases()).confirmed).toEqual([json.lease_id]);
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toEqual([]);
  });

  it('H3 two instances reaping one store share the work: every role is dropped, every lease revoked once', async () => {
    const leases: string[] = [];
    for (let i = 0; i < 6; i++) leases.push((await ask('read')).json.lease_id);
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toHaveLength(6);
    // Suspension ends them all; nobody kicks the reaper, so the revocations wait, due now.
    const r = await suspendAgent({
      ctx: h.server.deps.ctx,
      actor: { type: 'operator', id: 'test' },
      input: { agentId: agent.id },
    });
    expect(r.pendingRevocations).toHaveLength(6);
    // A second instance on the same data (as a second process would be).
    const other = await startHarness({ home: h.home, clock: h.clock, configure: () => {} });
    try {
      const [a, b] = await Promise.all([h.server.reapLeases(), other.server.reapLeases()]);
      expect([...a.confirmed, ...b.confirmed].sort()).toEqual([...leases].sort());
      expect([...a.failed, ...b.failed]).toEqual([]);
    } finally {
      await other.close();
    }
    expect(await rolesWithPrefix(kind.dbs.rolePrefix)).toEqual([]);
    for (const id of leases) {
      expect(
        (await auditTypes(h, id)).filter((t) => t === 'lease.revoked'),
        id,
      ).toHaveLength(1);
    }
  });
});
