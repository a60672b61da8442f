/** Table shapes as stored. Times are epoch milliseconds; JSON columns hold text. */
export interface Database {
  meta: { key: string; value: string };
  agents: {
    id: string;
    owner: string;
    boundary: string;
    environment: string;
    trust_tier: string;
    status: string;
    public_jwk: string | null;
    jwk_thumbprint: string | null;
    created_at: number;
    expires_at: number | null;
    last_seen_at: number | null;
  };
  workload_identities: { issuer: string; subject: string; agent_id: string; created_at: number };
  token_ids: { issuer: string; token_id: string; expires_at: number };
  access_requests: {
    id: string;
    agent_id: string;
    action: string;
    resource: string;
    task_id: string;
    status: string;
    digest: string;
    canonical: string;
    decision: string;
    risk: string;
    idempotency_key: string | null;
    body_hash: string;
    created_at: number;
    decided_at: number | null;
    deadline_at: number | null;
    lease_id: string | null;
    cnf_jkt: string | null;
  };
  leases: {
    id: string;
    request_id: string;
    agent_id: string;
    task_id: string;
    kind: string;
    credential_id: string;
    fingerprint: string;
    audience: string;
    scope: string;
    issued_at: number;
    expires_at: number;
    status: string;
    revoked_at: number | null;
    revoke_reason: string | null;
    delivered_at: number | null;
    cnf_jkt: string | null;
    issuer: string;
    action: string | null;
    resource: string | null;
    revoke_attempts: number;
    next_revoke_at: number | null;
    claimed_until: number | null;
    claimed_by: string | null;
    last_revoke_error: string | null;
    revoke_confirmed_at: number | null;
  };
  reviewers: {
    id: string;
    email: string;
    groups: string;
    status: string;
    webauthn_user_id: string;
    created_at: number;
  };
  reviewer_credentials: {
    id: string;
    reviewer_id: string;
    public_key: string;
    counter: number;
    transports: string;
    created_at: number;
    last_used_at: number | null;
  };
  invites: {
    token_hash: string;
    email: string;
    groups: string;
    expires_at: number;
    used_at: number | null;
    created_at: number;
  };
  sessions: {
    token_hash: string;
    reviewer_id: string;
    created_at: number;
    last_seen_at: number;
    expires_at: number;
    revoked_at: number | null;
  };
  challenges: {
    id: string;
    purpose: string;
    reviewer_id: string | null;
    request_id: string | null;
    verdict: string | null;
    nonce: string;
    challenge: string;
    expires_at: number;
    used_at: number | null;
  };
  votes: {
    request_id: string;
    reviewer_id: string;
    verdict: string;
    assertion_hash: string;
    credential_id: string;
    created_at: number;
  };
  receipts: { request_id: string; jws: string; created_at: number };
  outbox: {
    id: string;
    subscriber: string;
    type: string;
    request_id: string | null;
    payload: string;
    attempts: number;
    next_attempt_at: number;
    delivered_at: number | null;
    failed_at: number | null;
    last_error: string | null;
    created_at: number;
  };
  /** One row per ended task (the name is historical: failed and abandoned tasks are here too). */
  tasks: { agent_id: string; task_id: string; completed_at: number; outcome: string; reason: string | null };
  task_heartbeats: { agent_id: string; task_id: string; first_at: number; last_at: number };
  sealed_secrets: {
    name: string;
    version: number;
    ciphertext: string;
    nonce: string;
    wrapped_key: string;
    wrap_nonce: string;
    key_id: string;
    fingerprint: string;
    created_at: number;
    updated_at: number;
  };
  master_keys: { key_id: string; wraps: number; created_at: number };
  evidence_views: { request_id: string; reviewer_id: string; viewed_at: number };
  shadow_decisions: {
    request_id: string;
    agent_id: string;
    action: string;
    resource: string;
    active_version: string;
    active_outcome: string;
    active_group: string | null;
    candidate_version: string;
    candidate_outcome: string;
    candidate_group: string | null;
    candidate_policies: string;
    created_at: number;
  };
  audit_events: {
    seq: number;
    id: string;
    at: string;
    type: string;
    actor_type: string;
    actor_id: string;
    request_id: string | null;
    data: string;
    prev_hash: string;
    hash: string;
  };
}
