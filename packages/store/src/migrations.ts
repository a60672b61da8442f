/**
 * Schema migrations, written once with Kysely's schema builder and compiled per dialect.
 * Each migration runs in one transaction with the version bump (THREATS.md H9); an instance
 * refuses to serve a database whose schema is newer than it knows.
 */
import { CountersignError } from '@countersign/core';
import type { CompiledQuery, Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: (db: Kysely<any>) => CompiledQuery[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'checkpoint',
    statements: (db) => [
      db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .compile(),
      db.schema
        .createTable('agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('boundary', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('trust_tier', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('jwk_thumbprint', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .compile(),
      db.schema
        .createTable('token_ids')
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('token_ids_pk', ['issuer', 'token_id'])
        .compile(),
      db.schema.createIndex('token_ids_expiry').on('token_ids').column('expires_at').compile(),
      db.schema
        .createTable('access_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('canonical', 'text', (c) => c.notNull())
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('risk', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text')
        .addColumn('body_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('decided_at', 'bigint')
        .addColumn('deadline_at', 'bigint')
        .addColumn('lease_id', 'text')
        .addUniqueConstraint('access_requests_idempotency', ['agent_id', 'idempotency_key'])
        .compile(),
      db.schema
        .createIndex('access_requests_agent')
        .on('access_requests')
        .columns(['agent_id', 'status'])
        .compile(),
      db.schema
        .createIndex('access_requests_deadline')
        .on('access_requests')
        .columns(['status', 'deadline_at'])
        .compile(),
      db.schema
        .createTable('leases')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // One lease per request at most: a grant is one-shot (invariant 3).
        .addColumn('request_id', 'text', (c) => c.notNull().unique())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.notNull().unique())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('audience', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoke_reason', 'text')
        .compile(),
      db.schema.createIndex('leases_task').on('leases').columns(['agent_id', 'task_id', 'status']).compile(),
      db.schema
        .createTable('tasks')
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('completed_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('tasks_pk', ['agent_id', 'task_id'])
        .compile(),
      db.schema
        .createTable('audit_events')
        // The chain is linear: one event per sequence number, enforced by the key.
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .compile(),
    ],
  },
  {
    version: 2,
    name: 'human review',
    statements: (db) => [
      db.schema
        .createTable('reviewers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('groups', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('webauthn_user_id', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .compile(),
      db.schema
        .createTable('reviewer_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('reviewer_id', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('counter', 'bigint', (c) => c.notNull())
        .addColumn('transports', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .compile(),
      db.schema
        .createIndex('reviewer_credentials_reviewer')
        .on('reviewer_credentials')
        .column('reviewer_id')
        .compile(),
      db.schema
        .createTable('invites')
        // Only the hash of the invite token is stored: the link is the secret.
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('groups', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .compile(),
      db.schema
        .createTable('sessions')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('reviewer_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .compile(),
      db.schema
        .createTable('challenges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('reviewer_id', 'text')
        .addColumn('request_id', 'text')
        .addColumn('verdict', 'text')
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('challenge', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .compile(),
      db.schema
        .createTable('votes')
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('reviewer_id', 'text', (c) => c.notNull())
        .addColumn('verdict', 'text', (c) => c.notNull())
        .addColumn('assertion_hash', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        // One vote per person per request: quorum counts distinct people (invariant 8).
        .addPrimaryKeyConstraint('votes_pk', ['request_id', 'reviewer_id'])
        .compile(),
      db.schema
        .createTable('receipts')
        .addColumn('request_id', 'text', (c) => c.primaryKey())
        .addColumn('jws', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .compile(),
      // A lease's credential is handed out once; approved leases wait for their agent.
      db.schema.alterTable('leases').addColumn('delivered_at', 'bigint').compile(),
    ],
  },
  {
    version: 3,
    name: 'notification outbox',
    statements: (db) => [
      // Written in the same unit as the review change it announces (THREATS.md H2): a
      // notification is never lost by a crash and never sent for something that rolled back.
      db.schema
        .createTable('outbox')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('subscriber', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('delivered_at', 'bigint')
        .addColumn('failed_at', 'bigint')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .compile(),
      db.schema
        .createIndex('outbox_due')
        .on('outbox')
        .columns(['delivered_at', 'failed_at', 'next_attempt_at'])
        .compile(),
    ],
  },
  {
    version: 4,
    name: 'workload identity',
    statements: (db) => [
      // Agents may now authenticate with a federated workload identity only, without a key:
      // the key columns become nullable. Neither SQLite nor a portable ALTER can drop NOT NULL,
      // so the table is rebuilt (copy, drop, rename), which both dialects compile alike.
      db.schema
        .createTable('agents_v4')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('boundary', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('trust_tier', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text')
        // One key, one agent (NHI9); several keyless agents are fine (NULLs are distinct).
        .addColumn('jwk_thumbprint', 'text', (c) => c.unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('last_seen_at', 'bigint')
        .compile(),
      db
        .insertInto('agents_v4')
        .columns([
          'id',
          'owner',
          'boundary',
          'environment',
          'trust_tier',
          'status',
          'public_jwk',
          'jwk_thumbprint',
          'created_at',
        ])
        .expression(
          db
            .selectFrom('agents')
            .select([
              'id',
              'owner',
              'boundary',
              'environment',
              'trust_tier',
              'status',
              'public_jwk',
              'jwk_thumbprint',
              'created_at',
            ]),
        )
        .compile(),
      db.schema.dropTable('agents').compile(),
      db.schema.alterTable('agents_v4').renameTo('agents').compile(),
      db.schema
        .createTable('workload_identities')
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        // One workload identity, one agent (NHI9, THREATS.md B13): the key refuses a second binding.
        .addPrimaryKeyConstraint('workload_identities_pk', ['issuer', 'subject'])
        .compile(),
      db.schema
        .createIndex('workload_identities_agent')
        .on('workload_identities')
        .column('agent_id')
        .compile(),
      // RFC 9449: the DPoP key a request was made with, and the key its lease is bound to.
      db.schema.alterTable('access_requests').addColumn('cnf_jkt', 'text').compile(),
      db.schema.alterTable('leases').addColumn('cnf_jkt', 'text').compile(),
    ],
  },
  {
    version: 5,
    name: 'credentials: issuers, lease lifecycle, tasks, sealed secrets',
    statements: (db) => [
      // SQLite adds one column per ALTER TABLE; PostgreSQL accepts the same statements.
      db.schema
        .alterTable('leases')
        .addColumn('issuer', 'text', (c) => c.notNull().defaultTo('access_token'))
        .compile(),
      db.schema.alterTable('leases').addColumn('action', 'text').compile(),
      db.schema.alterTable('leases').addColumn('resource', 'text').compile(),
      db.schema
        .alterTable('leases')
        .addColumn('revoke_attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .compile(),
      db.schema.alterTable('leases').addColumn('next_revoke_at', 'bigint').compile(),
      // The durable reaper's claim: a compare-and-set on these two lets several instances
      // share the work without doing any revocation twice at the same time.
      db.schema.alterTable('leases').addColumn('claimed_until', 'bigint').compile(),
      db.schema.alterTable('leases').addColumn('claimed_by', 'text').compile(),
      db.schema.alterTable('leases').addColumn('last_revoke_error', 'text').compile(),
      db.schema.alterTable('leases').addColumn('revoke_confirmed_at', 'bigint').compile(),
      db.schema
        .createIndex('leases_revocation_due')
        .on('leases')
        .columns(['status', 'next_revoke_at'])
        .compile(),
      db.schema.createIndex('leases_expiry').on('leases').columns(['status', 'expires_at']).compile(),
      db.schema
        .alterTable('tasks')
        .addColumn('outcome', 'text', (c) => c.notNull().defaultTo('completed'))
        .compile(),
      db.schema.alterTable('tasks').addColumn('reason', 'text').compile(),
      db.schema
        .createTable('task_heartbeats')
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('first_at', 'bigint', (c) => c.notNull())
        .addColumn('last_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('task_heartbeats_pk', ['agent_id', 'task_id'])
        .compile(),
      db.schema.createIndex('task_heartbeats_last').on('task_heartbeats').column('last_at').compile(),
      // Envelope-encrypted secrets (docs/credentials.md): only ciphertext, wrapped data keys
      // and an HMAC fingerprint are stored; the master key never is (THREATS.md L1, L2).
      db.schema
        .createTable('sealed_secrets')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('ciphertext', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('wrap_nonce', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .compile(),
      // How many data keys each master key has wrapped: random 96-bit nonces are safe only
      // up to a cap per key (THREATS.md L4).
      db.schema
        .createTable('master_keys')
        .addColumn('key_id', 'text', (c) => c.primaryKey())
        .addColumn('wraps', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .compile(),
    ],
  },
  {
    version: 6,
    name: 'people for exceptions: evidence views, shadow decisions, request time index',
    statements: (db) => [
      // The first time each reviewer opened a review's evidence pack: a vote cast seconds after
      // it, or with no view at all, is a rubber-stamp signal (OWASP Agentic T10).
      db.schema
        .createTable('evidence_views')
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('reviewer_id', 'text', (c) => c.notNull())
        .addColumn('viewed_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('evidence_views_pk', ['request_id', 'reviewer_id'])
        .compile(),
      db.schema.createIndex('evidence_views_at').on('evidence_views').column('viewed_at').compile(),
      // Shadow mode: a candidate policy set's decision beside the enforced one, kept only
      // where the two differ.
      db.schema
        .createTable('shadow_decisions')
        .addColumn('request_id', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('active_version', 'text', (c) => c.notNull())
        .addColumn('active_outcome', 'text', (c) => c.notNull())
        .addColumn('active_group', 'text')
        .addColumn('candidate_version', 'text', (c) => c.notNull())
        .addColumn('candidate_outcome', 'text', (c) => c.notNull())
        .addColumn('candidate_group', 'text')
        .addColumn('candidate_policies', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .compile(),
      db.schema.createIndex('shadow_decisions_at').on('shadow_decisions').column('created_at').compile(),
      // Backtests, analytics and suggestions read requests by time.
      db.schema.createIndex('access_requests_created').on('access_requests').column('created_at').compile(),
      db.schema.createIndex('votes_created').on('votes').column('created_at').compile(),
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Reads the version a database's schema is at (its `meta` table exists). */
export function readSchemaVersion(kysely: Kysely<Database>): CompiledQuery<{ value: string }> {
  return kysely.selectFrom('meta').select('value').where('key', '=', 'schema_version').compile();
}

/** The version bump that runs in the same transaction as its migration's statements. */
export function writeSchemaVersion(kysely: Kysely<Database>, version: number): CompiledQuery {
  return kysely
    .insertInto('meta')
    .values({ key: 'schema_version', value: String(version) })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(version) }))
    .compile();
}

/** Refuses a database whose schema is newer than this build knows (THREATS.md H9). */
export function refuseNewerSchema(current: number): void {
  if (current > SCHEMA_VERSION) {
    throw new CountersignError(
      'CS_STORE_UNAVAILABLE',
      `database schema version ${current} is newer than this Countersign (${SCHEMA_VERSION}); refusing to serve`,
    );
  }
}
