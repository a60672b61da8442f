/**
 * Every call the console makes to the Countersign server (docs/review-api.md), and the passkey
 * ceremonies built on them. Nothing else in the app calls fetch or WebAuthn.
 */
import {
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  startAuthentication,
  startRegistration,
  WebAuthnError,
} from '@simplewebauthn/browser';

// ---------------------------------------------------------------------------------------------
// Types (docs/review-api.md)

export type RequestStatus = 'pending' | 'allowed' | 'denied' | 'expired' | 'withdrawn' | 'cancelled';
export type Verdict = 'approve' | 'deny';

export interface Reviewer {
  id: string;
  email: string;
  groups: string[];
}

export interface ReviewSummary {
  request_id: string;
  status: RequestStatus;
  agent_id: string;
  action: string;
  resource: string;
  risk_score: number;
  reviewer_group: string;
  approvals_needed: number;
  approvals_given: number;
  created_at: string;
  deadline_at: string;
}

export interface ToolCall {
  tool: string;
  source?: 'trusted' | 'untrusted' | 'unknown' | null;
  summary?: string | null;
}

export interface McpToolCall {
  server: string;
  tool: string;
  /** RFC 8785 canonical JSON of the arguments: exactly what the digest covers. */
  arguments: string;
  /** SHA-256 over server, tool and arguments. */
  call_digest: string;
  session?: string | null;
  client?: string | null;
}

export interface EvidencePack {
  request_id: string;
  status: RequestStatus;
  digest: string;
  policy_version: string;
  created_at: string;
  deadline_at: string;
  /** Registry facts; null when the agent record is gone (the server then sends status "unknown"). */
  agent: {
    id: string;
    owner: string | null;
    boundary: string | null;
    environment: string | null;
    status: string;
  };
  action: string;
  action_class: string;
  /** Catalog facts; `catalog_pattern` is null when no catalog entry matches. */
  resource: {
    uri: string;
    sensitivity: string | null;
    environment: string | null;
    owner: string | null;
    boundary: string | null;
    catalog_pattern: string | null;
  };
  claims: {
    purpose: string;
    task_id: string;
    ticket: string | null;
    on_behalf_of: string | null;
    tool_chain: ToolCall[];
    model_output: string | null;
    /** The MCP tool call, when the request came through the MCP gateway. */
    tool_call: McpToolCall | null;
    environment: string | null;
    ttl_seconds: number | null;
  };
  risk: { score: number; factors: { name: string; weight: number; detail: string }[] };
  policies: { id: string; effect: string; reason: string | null }[];
  obligations: {
    max_ttl_seconds: number | null;
    approvals: number;
    reviewer_group: string;
    deadline_seconds: number | null;
    separation: string[];
  };
  votes: { reviewer_id: string; email: string; verdict: Verdict; at: string }[];
  novelty: { first_action: boolean; first_resource: boolean; first_environment: boolean };
  can_decide: boolean;
  cannot_decide_reason: string | null;
}

export interface DecisionResult {
  status: 'pending' | 'allowed' | 'denied';
  approvals_given: number;
  approvals_needed: number;
}

export interface AgentRecord {
  id: string;
  owner: string;
  boundary: string;
  environment: string;
  status: string;
  created_at: string;
}

export interface SuspendResult {
  revoked_leases: number;
  cancelled_requests: number;
}

export type LeaseStatus = 'issuing' | 'active' | 'revoke_pending' | 'revoked';

/** A lease as the server shows it: never the credential. */
export interface LeaseRecord {
  lease_id: string;
  request_id: string;
  agent_id: string;
  task_id: string;
  kind: string;
  issuer: string;
  action: string | null;
  resource: string | null;
  credential_id: string;
  status: LeaseStatus;
  /** What it means now: `expired` once its TTL passed, even before the reaper ran. */
  state: string;
  issued_at: string;
  expires_at: string;
  delivered_at: string | null;
  revoked_at: string | null;
  revoke_reason: string | null;
  revoke_attempts: number;
  next_revoke_at: string | null;
  last_revoke_error: string | null;
  revoke_confirmed_at: string | null;
}

export type AuditStatus =
  | { ok: true; count: number; head_hash: string }
  | { ok: false; count: number; seq: number; event_id: string; reason: string };

export interface EnrollmentInvite {
  options: PublicKeyCredentialCreationOptionsJSON;
  challenge_id: string;
  email: string;
  groups: string[];
}

export interface ReviewEvent {
  request_id: string;
  status: RequestStatus;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A refusal from the server (`{ error: { code, message } }`), a network failure, or a passkey failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Any thrown value as `{ code, message }` for display. */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  if (error instanceof WebAuthnError) return { code: error.code, message: error.message };
  if (error instanceof DOMException || error instanceof Error) {
    if (error.name === 'NotAllowedError') {
      return {
        code: 'NotAllowedError',
        message: 'The passkey prompt was cancelled or timed out. Nothing was sent.',
      };
    }
    return { code: error.name || 'Error', message: error.message || 'Something went wrong.' };
  }
  return { code: 'Error', message: 'Something went wrong.' };
}

let unauthorizedHandler: (() => void) | null = null;

/** Called whenever the server answers 401 (the session ended): the app shows the login page. */
export function onUnauthorized(handler: (() => void) | null): void {
  unauthorizedHandler = handler;
}

// ---------------------------------------------------------------------------------------------
// Reviewer load, backtests, shadow mode, suggested policies (issue 8)

export interface DurationStats {
  count: number;
  median_seconds: number | null;
  p90_seconds: number | null;
}

export interface GroupLoad {
  group: string;
  queue_depth: number;
  reviews: number;
  approved: number;
  denied: number;
  expired: number;
  approval_rate: number | null;
  time_to_decision: DurationStats;
  decisions_per_hour: number;
  quick_votes: number;
  unopened_votes: number;
  out_of_hours_votes: number;
}

export interface ReviewerLoad {
  reviewer_id: string;
  email: string | null;
  groups: string[];
  queue_depth: number;
  votes: number;
  approvals: number;
  approval_rate: number | null;
  time_to_decision: DurationStats;
  decisions_per_hour: number;
  quick_votes: number;
  unopened_votes: number;
  out_of_hours_votes: number;
}

export interface AgentLoad {
  agent_id: string;
  requests: number;
  reviews: number;
  escalation_rate: number;
  pending: number;
}

export interface ReviewerLoadReport {
  since: string;
  until: string;
  requests: number;
  reviews: number;
  human_share: number;
  groups: GroupLoad[];
  reviewers: ReviewerLoad[];
  agents: AgentLoad[];
  votes_by_hour: number[];
}

export interface Suggestion {
  id: string;
  agent_id: string;
  action: string;
  resource: string;
  reviewer_group: string | null;
  approvals: number;
  approved_request_ids: string[];
  waives: string[];
  max_risk_score: number;
  ttl_seconds: number;
  text: string;
  text_sha256: string;
  evidence: { reviews_spared: number; other_changes: number; allows_denied: number; replayed: number };
}

export interface SuggestionList {
  admin_group: string;
  can_adopt: boolean;
  policy_version: string;
  items: Suggestion[];
}

export interface OutcomeExample {
  request_id: string;
  agent_id: string;
  action: string;
  resource: string;
}

export interface ShadowReport {
  enabled: boolean;
  candidate_version: string | null;
  candidate_error: string | null;
  differences: number;
  changes: Record<string, number>;
  examples: Record<string, Array<OutcomeExample & { at: string }>>;
}

export interface BacktestResult {
  candidate_version: string;
  replayed: number;
  unchanged: number;
  skipped: number;
  reviews_before: number;
  reviews_after: number;
  changes: Record<string, number>;
  examples: Record<string, Array<OutcomeExample & { from_group: string | null; to_group: string | null }>>;
}

// ---------------------------------------------------------------------------------------------
// Transport

function errorBody(data: unknown): { code?: string; message?: string } | null {
  if (typeof data !== 'object' || data === null || !('error' in data)) return null;
  const error = (data as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) return null;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const init: RequestInit = { method, credentials: 'same-origin', cache: 'no-store', headers };
  if (method === 'POST') {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'CS_NETWORK', 'Could not reach the Countersign server. Check your connection.');
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = errorBody(data);
    if (response.status === 401) unauthorizedHandler?.();
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? (response.statusText || 'The server refused the request.'),
    );
  }
  if (data === null) throw new ApiError(response.status, 'CS_BAD_RESPONSE', 'The server sent no JSON.');
  return data as T;
}

const seg = (value: string) => encodeURIComponent(value);

/** `path` with the given parameters as its query; empty and absent ones are left out. */
const withQuery = (path: string, params: Record<string, string | number | undefined>) => {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, String(value));
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
};

// ---------------------------------------------------------------------------------------------
// Endpoints

export const EVENTS_URL = '/v1/console/events';

export const api = {
  me: () => call<Reviewer>('GET', '/v1/console/me'),
  logout: () => call<Record<string, never>>('POST', '/v1/console/logout', {}),

  enrollOptions: (token: string) => call<EnrollmentInvite>('POST', '/v1/console/enroll/options', { token }),
  enrollVerify: (token: string, challenge_id: string, response: RegistrationResponseJSON) =>
    call<{ reviewer: Reviewer }>('POST', '/v1/console/enroll/verify', { token, challenge_id, response }),

  loginOptions: () =>
    call<{ options: PublicKeyCredentialRequestOptionsJSON; login_id: string }>(
      'POST',
      '/v1/console/login/options',
      {},
    ),
  loginVerify: (login_id: string, response: AuthenticationResponseJSON) =>
    call<{ reviewer: Reviewer }>('POST', '/v1/console/login/verify', { login_id, response }),

  reviews: () => call<{ items: ReviewSummary[] }>('GET', '/v1/console/reviews'),
  request: (id: string) => call<EvidencePack>('GET', `/v1/console/requests/${seg(id)}`),
  history: (filter: { status?: string; agent?: string; limit?: number }) =>
    call<{ items: ReviewSummary[] }>('GET', withQuery('/v1/console/history', filter)),

  decisionOptions: (id: string, verdict: Verdict) =>
    call<{ options: PublicKeyCredentialRequestOptionsJSON; challenge_id: string }>(
      'POST',
      `/v1/console/requests/${seg(id)}/decision/options`,
      { verdict },
    ),
  decide: (id: string, verdict: Verdict, challenge_id: string, response: AuthenticationResponseJSON) =>
    call<DecisionResult>('POST', `/v1/console/requests/${seg(id)}/decision`, {
      verdict,
      challenge_id,
      response,
    }),

  agents: () => call<{ items: AgentRecord[] }>('GET', '/v1/console/agents'),
  suspendAgent: (id: string, reason: string) =>
    call<SuspendResult>('POST', `/v1/console/agents/${seg(id)}/suspend`, { reason }),

  leases: (filter: { status?: string; agent?: string }) =>
    call<{ items: LeaseRecord[]; failing_revocations: number }>(
      'GET',
      withQuery('/v1/console/leases', filter),
    ),
  revokeLease: (id: string, reason: string) =>
    call<{ revoked: boolean; lease: LeaseRecord }>('POST', `/v1/console/leases/${seg(id)}/revoke`, {
      reason,
    }),

  audit: () => call<AuditStatus>('GET', '/v1/console/audit'),

  suggestions: () => call<SuggestionList>('GET', '/v1/console/suggestions'),
  adoptOptions: (id: string, text_sha256: string) =>
    call<{ options: PublicKeyCredentialRequestOptionsJSON; challenge_id: string }>(
      'POST',
      `/v1/console/suggestions/${seg(id)}/adopt/options`,
      { text_sha256 },
    ),
  adopt: (id: string, text_sha256: string, challenge_id: string, response: AuthenticationResponseJSON) =>
    call<{ adopted: string; policy_version: string }>('POST', `/v1/console/suggestions/${seg(id)}/adopt`, {
      text_sha256,
      challenge_id,
      response,
    }),
  shadow: (window: string) => call<ShadowReport>('GET', withQuery('/v1/console/shadow', { window })),
  backtest: (window: string) => call<BacktestResult>('GET', withQuery('/v1/console/backtest', { window })),
  analytics: (window: string) =>
    call<ReviewerLoadReport>('GET', withQuery('/v1/console/analytics', { window })),
};

// ---------------------------------------------------------------------------------------------
// Passkey ceremonies

/** Registers a passkey for an invite whose options were already fetched (keeps the click's user activation). */
export async function completeEnrollment(token: string, invite: EnrollmentInvite): Promise<Reviewer> {
  const response = await startRegistration({ optionsJSON: invite.options });
  return (await api.enrollVerify(token, invite.challenge_id, response)).reviewer;
}

export async function signInWithPasskey(): Promise<Reviewer> {
  const { options, login_id } = await api.loginOptions();
  const response = await startAuthentication({ optionsJSON: options });
  return (await api.loginVerify(login_id, response)).reviewer;
}

/** Adopting a suggested policy: a fresh assertion over a challenge derived from its exact text. */
export async function adoptWithPasskey(id: string, textSha256: string) {
  const { options, challenge_id } = await api.adoptOptions(id, textSha256);
  const response = await startAuthentication({ optionsJSON: options });
  return api.adopt(id, textSha256, challenge_id, response);
}

/** One vote: a fresh assertion over a challenge the server derived from this request's digest and verdict. */
export async function decideWithPasskey(id: string, verdict: Verdict): Promise<DecisionResult> {
  const { options, challenge_id } = await api.decisionOptions(id, verdict);
  const response = await startAuthentication({ optionsJSON: options });
  return api.decide(id, verdict, challenge_id, response);
}
