/**
 * The `postgres_role` issuer: a dynamic PostgreSQL role per lease, the way Vault's database
 * secrets engine makes them, but only after the checkpoint (and a reviewer, when policy says
 * so) allowed exactly one action on exactly one table.
 *
 * Resource grammar: `postgres://<server>/<database>/<schema>.<table>`, every name a plain
 * lowercase identifier. The role is created in ONE transaction on an admin connection to the
 * target database: LOGIN with a random password (sent as a SCRAM-SHA-256 verifier, so the
 * password itself never reaches the server or its statement log), `VALID UNTIL` the lease's
 * expiry, no other attribute, then CONNECT on that database, USAGE on that schema and exactly
 * the configured privileges for the action on that table. Nothing else: revoking what PUBLIC
 * may do (CONNECT on other databases, TEMPORARY) is the operator's job (docs/credentials.md).
 *
 * Revocation: NOLOGIN (no new session), terminate every backend of the role and wait for them
 * to end (`VALID UNTIL` does not end open sessions), DROP OWNED BY (its privileges here and on
 * the database), DROP ROLE. Idempotent: a role that is gone revokes cleanly. It resolves only
 * once the role and its sessions are verifiably gone, so the reaper never records a revocation
 * the database did not confirm (THREATS.md C5).
 *
 * Identifiers are generated from a strict grammar or checked against one, then quoted with
 * pg's escapeIdentifier; literals go through escapeLiteral; values that can be parameters are
 * parameters. No agent input reaches SQL text.
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
  type CredentialPlan,
  type Grant,
  type IssuedCredential,
  type Issuer,
  parseResource,
} from '@countersign/core';
import type pgTypes from 'pg';

const pbkdf2Async = promisify(pbkdf2);

/** Plain lowercase identifiers only: what needs no quoting, and what a grammar can vouch for. */
export const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** Role names are `<prefix><24 hex>`; the prefix has its own grammar so names stay ≤ 63 bytes. */
export const ROLE_PREFIX = /^[a-z][a-z0-9_]{0,20}$/;
export const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
export type TablePrivilege = (typeof TABLE_PRIVILEGES)[number];

export const DEFAULT_PRIVILEGES: Readonly<Record<string, readonly TablePrivilege[]>> = {
  read: ['SELECT'],
  write: ['INSERT', 'UPDATE'],
};

export interface PostgresRoleOptions {
  /** The configured issuer name (for messages). */
  readonly name: string;
  /** The `<server>` segment this issuer serves. */
  readonly server: string;
  readonly admin: {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password: string | null;
    readonly ssl: false | { readonly rejectUnauthorized: true; readonly servername: string };
  };
  /** What the agent is told to connect to (defaults to the admin connection's host and port). */
  readonly connectHost: string;
  readonly connectPort: number;
  readonly rolePrefix: string;
  readonly connectionLimit: number;
  readonly privileges: Readonly<Record<string, readonly TablePrivilege[]>>;
  readonly timeoutMs: number;
}

export interface PostgresTarget {
  readonly database: string;
  readonly schema: string;
  readonly table: string;
}

/** Parses `postgres://<server>/<db>/<schema>.<table>`; a string says why it is not one. */
export function parsePostgresResource(resource: string, server: string): PostgresTarget | string {
  let name: ReturnType<typeof parseResource>;
  try {
    name = parseResource(resource);
  } catch (error) {
    return (error as Error).message;
  }
  if (name.scheme !== 'postgres') return 'the resource is not postgres://';
  if (name.segments.length !== 3)
    return 'a PostgreSQL resource is postgres://<server>/<database>/<schema>.<table>';
  const [host, database, qualified] = name.segments as [string, string, string];
  if (host !== server) return `this issuer serves PostgreSQL server ${JSON.stringify(server)} only`;
  const parts = qualified.split('.');
  if (parts.length !== 2) return 'the table must be written <schema>.<table>';
  const [schema, table] = parts as [string, string];
  for (const [what, value] of [
    ['database', database],
    ['schema', schema],
    ['table', table],
  ] as const) {
    if (!PG_IDENTIFIER.test(value)) return `the ${what} name must match ${PG_IDENTIFIER.source}`;
  }
  return { database, schema, table };
}

/**
 * A SCRAM-SHA-256 verifier (RFC 5802 §3, RFC 7677) in PostgreSQL's stored form
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. PostgreSQL stores a verifier
 * given as the password as it is, so the password never leaves this process.
 * SaltedPassword := Hi(password, salt, i); ClientKey := HMAC(SaltedPassword, "Client Key");
 * StoredKey := H(ClientKey); ServerKey := HMAC(SaltedPassword, "Server Key").
 */
export async function scramSha256Verifier(
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = 4096,
): Promise<string> {
  // Our passwords are base64url (ASCII): SASLprep leaves them unchanged.
  if (!/^[\x21-\x7e]+$/.test(password)) throw new TypeError('password must be printable ASCII');
  const salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

type Pg = typeof pgTypes;
let pgModule: Promise<Pg> | null = null;
/** `pg` loads on first use: commands and servers without a PostgreSQL issuer never pay for it. */
function loadPg(): Promise<Pg> {
  pgModule ??= import('pg').then((m) => (m as unknown as { default: Pg }).default ?? (m as unknown as Pg));
  return pgModule;
}

export interface PostgresRoleIssuer extends Issuer {
  /** The role a lease gets (deterministic from the lease id, so recovery knows what to drop). */
  roleName(leaseId: string): string;
  close(): Promise<void>;
}

export function postgresRoleIssuer(options: PostgresRoleOptions): PostgresRoleIssuer {
  if (!ROLE_PREFIX.test(options.rolePrefix)) throw new TypeError('role prefix breaks its grammar');
  if (!Number.isInteger(options.connectionLimit) || options.connectionLimit < 1)
    throw new TypeError('connection limit must be a positive integer');
  for (const list of Object.values(options.privileges)) {
    for (const p of list) if (!TABLE_PRIVILEGES.includes(p)) throw new TypeError(`unknown privilege ${p}`);
  }
  const pools = new Map<string, pgTypes.Pool>();

  async function poolFor(database: string): Promise<pgTypes.Pool> {
    if (!PG_IDENTIFIER.test(database)) throw new TypeError('database name breaks its grammar');
    const pg = await loadPg();
    let pool = pools.get(database);
    if (!pool) {
      pool = new pg.Pool({
        host: options.admin.host,
        port: options.admin.port,
        user: options.admin.user,
        ...(options.admin.password !== null ? { password: options.admin.password } : {}),
        database,
        ssl: options.admin.ssl === false ? false : { ...options.admin.ssl },
        max: 2,
        connectionTimeoutMillis: options.timeoutMs,
        idleTimeoutMillis: 5_000,
        statement_timeout: options.timeoutMs,
        query_timeout: options.timeoutMs,
        application_name: `countersign:${options.name}`,
        allowExitOnIdle: true,
      });
      // A broken idle connection must not crash the process; the next checkout reconnects.
      pool.on('error', () => {});
      pools.set(database, pool);
    }
    return pool;
  }

  /** Runs `work` on one admin connection; a failed connection is discarded, not pooled. */
  async function withClient<T>(
    database: string,
    work: (client: pgTypes.PoolClient, pg: Pg) => Promise<T>,
  ): Promise<T> {
    const pg = await loadPg();
    const client = await (await poolFor(database)).connect();
    try {
      const result = await work(client, pg);
      client.release();
      return result;
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  function roleName(leaseId: string): string {
    const name = `${options.rolePrefix}${createHash('sha256').update(`countersign/role/v1\0${leaseId}`).digest('hex').slice(0, 24)}`;
    if (!PG_IDENTIFIER.test(name)) throw new TypeError('generated role name breaks its grammar');
    return name;
  }

  function target(resource: string): PostgresTarget {
    const parsed = parsePostgresResource(resource, options.server);
    if (typeof parsed === 'string') throw new TypeError(parsed);
    return parsed;
  }

  const plan = (grant: Grant): CredentialPlan => {
    const t = target(grant.resource);
    return {
      credentialId: roleName(grant.leaseId),
      scope: {
        database: t.database,
        schema: t.schema,
        table: t.table,
        privileges: [...(options.privileges[grant.action] ?? [])],
        valid_until: new Date(grant.expiresAt).toISOString(),
      },
    };
  };

  return {
    kind: 'postgres_role',
    mint: 'delivery',
    downstream: true,
    roleName,
    supports({ action, resource }) {
      const parsed = parsePostgresResource(resource, options.server);
      if (typeof parsed === 'string') return parsed;
      if (!options.privileges[action]?.length) {
        return `issuer ${options.name} has no privilege template for action ${JSON.stringify(action)}`;
      }
      return null;
    },
    plan,
    async issue(grant: Grant): Promise<IssuedCredential> {
      const { credentialId: role, scope } = plan(grant);
      const t = target(grant.resource);
      const privileges = options.privileges[grant.action];
      if (!privileges?.length) throw new TypeError(`no privilege template for ${grant.action}`);
      // 192 random bits; only its SCRAM verifier is sent to PostgreSQL.
      const password = randomBytes(24).toString('base64url');
      const verifier = await scramSha256Verifier(password);
      const validUntil = new Date(grant.expiresAt).toISOString();
      await withClient(t.database, async (client, pg) => {
        const ident = (name: string) => pg.escapeIdentifier(name);
        const literal = (value: string) => pg.escapeLiteral(value);
        await client.query('BEGIN');
        try {
          await lockAcls(client, t.database);
          await client.query(
            `CREATE ROLE ${ident(role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT ` +
              `NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${options.connectionLimit} ` +
              `PASSWORD ${literal(verifier)} VALID UNTIL ${literal(validUntil)}`,
          );
          await client.query(`GRANT CONNECT ON DATABASE ${ident(t.database)} TO ${ident(role)}`);
          await client.query(`GRANT USAGE ON SCHEMA ${ident(t.schema)} TO ${ident(role)}`);
          const table = `${ident(t.schema)}.${ident(t.table)}`;
          await client.query(`GRANT ${privileges.join(', ')} ON TABLE ${table} TO ${ident(role)}`);
          if (privileges.includes('INSERT')) {
            // Inserting into a table with serial columns needs its own sequences (only those).
            const owned = await client.query<{ nspname: string; relname: string }>(
              `SELECT n.nspname, s.relname
                 FROM pg_depend d
                 JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                 JOIN pg_namespace n ON n.oid = s.relnamespace
                WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                  AND d.refobjid = to_regclass($1) AND d.deptype = 'a'`,
              [table],
            );
            for (const seq of owned.rows) {
              await client.query(
                `GRANT USAGE ON SEQUENCE ${ident(seq.nspname)}.${ident(seq.relname)} TO ${ident(role)}`,
              );
            }
          }
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      });
      return {
        credential: {
          type: 'postgres_role',
          host: options.connectHost,
          port: options.connectPort,
          database: t.database,
          user: role,
          password,
          expires_at: validUntil,
          lease_id: grant.leaseId,
        },
        credentialId: role,
        fingerprint: `sha256:${createHash('sha256').update(password).digest('hex')}`,
        scope,
      };
    },
    async revoke(lease) {
      const role = lease.credentialId;
      if (!PG_IDENTIFIER.test(role) || !role.startsWith(options.rolePrefix)) {
        throw new TypeError('the lease does not name a role this issuer makes');
      }
      const t = target(lease.resource);
      await withClient(t.database, async (client, pg) => {
        // Held for the whole sequence (several transactions); released with the session if it dies.
        await client.query('SELECT pg_advisory_lock(hashtext($1))', [aclLockKey(t.database)]);
        try {
          await dropRole(client, role, (name) => pg.escapeIdentifier(name));
        } catch (error) {
          // 42704 undefined_object: another reaper dropped it meanwhile. Gone is gone.
          if ((error as { code?: string }).code !== '42704') throw error;
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtext($1))', [aclLockKey(t.database)]);
        }
      });
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((p) => p.end().catch(() => {})));
    },
  };
}

/**
 * Creating, granting, revoking and dropping roles rewrite shared catalog rows (the database's
 * ACL, pg_shdepend); two sessions doing that at once fail with "tuple concurrently updated".
 * One advisory lock per database serialises them across every Countersign instance: issuance
 * takes it for its transaction, revocation for its whole sequence.
 */
async function lockAcls(client: pgTypes.PoolClient, database: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [aclLockKey(database)]);
}

const aclLockKey = (database: string) => `countersign/acl/${database}`;

/** Ends a role: no new logins, its sessions terminated and gone, its grants dropped, the role dropped. */
async function dropRole(
  client: pgTypes.PoolClient,
  role: string,
  ident: (name: string) => string,
): Promise<void> {
  const found = await client.query<{ oid: string }>(
    'SELECT oid::text AS oid FROM pg_roles WHERE rolname = $1',
    [role],
  );
  const oid = found.rows[0]?.oid;
  if (oid === undefined) return; // already gone: idempotent
  await client.query(`ALTER ROLE ${ident(role)} NOLOGIN`);
  // PostgreSQL 14+: wait up to 5 s for each backend to end, not just signal it.
  await client.query(
    'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usesysid = $1::oid AND pid <> pg_backend_pid()',
    [oid],
  );
  const left = await client.query<{ n: string }>(
    'SELECT count(*)::text AS n FROM pg_stat_activity WHERE usesysid = $1::oid',
    [oid],
  );
  if (left.rows[0]?.n !== '0') throw new Error('sessions of the role are still open');
  await client.query('BEGIN');
  try {
    await client.query(`DROP OWNED BY ${ident(role)}`);
    await client.query(`DROP ROLE ${ident(role)}`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
