/**
 * The machine's real PostgreSQL (127.0.0.1:5432, trust auth) for the postgres_role issuer's
 * tests. Every test creates its own target databases (random names) and drops them, and the
 * roles it made, afterwards. A small TCP relay in front of the server lets a test cut the
 * issuer's admin connection on purpose (a downstream that fails revocations, THREATS.md C5).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import pg from 'pg';

export const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };

export async function admin<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...PG, database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface TargetDatabases {
  /** The database the grants are in: tables public.orders, public.payroll, billing.invoices. */
  readonly db: string;
  /** Another database on the same server, closed to PUBLIC as an operator should. */
  readonly other: string;
  /** Role names the issuer makes start with this (one per test file run). */
  readonly rolePrefix: string;
  drop(): Promise<void>;
}

const ident = (s: string) => pg.escapeIdentifier(s);

/** Creates two fresh databases, hardened the way docs/credentials.md tells operators to. */
export async function createTargetDatabases(): Promise<TargetDatabases> {
  const tag = randomBytes(5).toString('hex');
  const db = `cs_target_${tag}`;
  const other = `cs_other_${tag}`;
  const rolePrefix = `cs_t${tag.slice(0, 6)}_`;
  await admin('postgres', async (c) => {
    await c.query(`CREATE DATABASE ${ident(db)}`);
    await c.query(`CREATE DATABASE ${ident(other)}`);
    // Operator hardening: PUBLIC may not connect to or make temp tables in these databases.
    await c.query(`REVOKE ALL ON DATABASE ${ident(db)} FROM PUBLIC`);
    await c.query(`REVOKE ALL ON DATABASE ${ident(other)} FROM PUBLIC`);
  });
  await admin(db, async (c) => {
    await c.query('CREATE TABLE public.orders (id serial PRIMARY KEY, note text NOT NULL)');
    await c.query("INSERT INTO public.orders (note) VALUES ('first'), ('second')");
    await c.query('CREATE TABLE public.payroll (id serial PRIMARY KEY, salary int NOT NULL)');
    await c.query('INSERT INTO public.payroll (salary) VALUES (100)');
    await c.query('CREATE SCHEMA billing');
    await c.query('CREATE TABLE billing.invoices (id serial PRIMARY KEY, total int NOT NULL)');
  });
  await admin(other, (c) => c.query('CREATE TABLE public.elsewhere (x int)'));
  return {
    db,
    other,
    rolePrefix,
    async drop() {
      await dropRoles(rolePrefix, [db, other]);
      await admin('postgres', async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${ident(db)} WITH (FORCE)`);
        await c.query(`DROP DATABASE IF EXISTS ${ident(other)} WITH (FORCE)`);
      });
    },
  };
}

/** Roles whose names start with `prefix` (what the issuer made in this test). */
export async function rolesWithPrefix(prefix: string): Promise<string[]> {
  return admin('postgres', async (c) => {
    const r = await c.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname',
      [prefix],
    );
    return r.rows.map((row) => row.rolname);
  });
}

export async function dropRoles(prefix: string, databases: readonly string[]): Promise<void> {
  const roles = await rolesWithPrefix(prefix);
  if (roles.length === 0) return;
  for (const database of databases) {
    await admin(database, async (c) => {
      for (const role of roles) {
        await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
        await c.query(`DROP OWNED BY ${ident(role)}`).catch(() => {});
      }
    }).catch(() => {});
  }
  await admin('postgres', async (c) => {
    for (const role of roles) await c.query(`DROP ROLE IF EXISTS ${ident(role)}`);
  });
}

/** Connects as the role a postgres_role credential names; throws when the server refuses. */
export async function connectAs(
  credential: Record<string, any>,
  database: string = credential.database,
): Promise<pg.Client> {
  const client = new pg.Client({
    host: credential.host,
    port: credential.port,
    user: credential.user,
    password: credential.password,
    database,
    connectionTimeoutMillis: 5000,
  });
  client.on('error', () => {}); // a terminated session errors on the socket too
  await client.connect();
  return client;
}

/** A TCP relay to PostgreSQL that a test can cut (refuse and drop connections) and restore. */
export interface FaultyRelay {
  readonly port: number;
  break(): Promise<void>;
  heal(): Promise<void>;
  close(): Promise<void>;
}

export async function startRelay(target = PG): Promise<FaultyRelay> {
  const sockets = new Set<Socket>();
  let broken = false;
  const server: Server = createServer((client) => {
    if (broken) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(target.port, target.host);
    sockets.add(client).add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    async break() {
      broken = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    async heal() {
      broken = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
