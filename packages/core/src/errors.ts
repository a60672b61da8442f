/**
 * Countersign's error contract. Every error a caller can act on carries a stable string
 * code (never rename one: operators alert on them) and a category that the transport maps
 * to a status. Programmer misuse throws a plain TypeError instead.
 */
export type ErrorCategory =
  | 'invalid_request' // the caller sent something malformed (400)
  | 'unauthenticated' // the caller did not prove who it is (401)
  | 'forbidden' // the caller may not do this (403)
  | 'not_found' // no such thing, or not visible to this caller (404)
  | 'conflict' // state does not allow it now (409)
  | 'unprocessable' // well-formed but inconsistent, such as an idempotency key reuse (422)
  | 'too_large' // body over the limit (413)
  | 'too_many' // the caller has too much outstanding, such as pending reviews (429)
  | 'unavailable' // we cannot decide safely right now: fail closed (503)
  | 'bad_gateway'; // the upstream behind the credential proxy failed or misbehaved (502)

export const ERROR_CODES = {
  CS_BAD_JSON: 'invalid_request',
  CS_DUPLICATE_KEY: 'invalid_request',
  CS_UNSAFE_NUMBER: 'invalid_request',
  CS_TOO_DEEP: 'invalid_request',
  CS_FORBIDDEN_KEY: 'invalid_request',
  CS_INVALID_REQUEST: 'invalid_request',
  CS_INVALID_RESOURCE: 'invalid_request',
  CS_INVALID_IDENTIFIER: 'invalid_request',
  CS_ARGUMENTS_DIGEST_MISMATCH: 'invalid_request',
  CS_TOO_MANY_CHECKS: 'invalid_request',
  CS_BODY_TOO_LARGE: 'too_large',
  CS_UNAUTHENTICATED: 'unauthenticated',
  CS_TOKEN_INVALID: 'unauthenticated',
  CS_TOKEN_EXPIRED: 'unauthenticated',
  CS_TOKEN_REPLAYED: 'unauthenticated',
  CS_AGENT_UNKNOWN: 'unauthenticated',
  CS_AGENT_SUSPENDED: 'unauthenticated',
  CS_AGENT_EXPIRED: 'unauthenticated',
  CS_DPOP_INVALID: 'unauthenticated',
  CS_DPOP_REQUIRED: 'unauthenticated',
  CS_ISSUER_UNTRUSTED: 'unauthenticated',
  CS_IDENTITY_UNBOUND: 'unauthenticated',
  CS_IDENTITY_UNAVAILABLE: 'unavailable',
  CS_IDENTITY_EXISTS: 'conflict',
  CS_FORBIDDEN: 'forbidden',
  CS_NOT_FOUND: 'not_found',
  CS_AGENT_EXISTS: 'conflict',
  CS_REQUEST_CLOSED: 'conflict',
  CS_ARGUMENTS_MISMATCH: 'conflict',
  CS_TASK_COMPLETED: 'conflict',
  CS_REVIEW_CLOSED: 'conflict',
  CS_ALREADY_VOTED: 'conflict',
  CS_POLICY_CHANGED: 'conflict',
  CS_NOT_ELIGIBLE: 'forbidden',
  CS_ORIGIN_REJECTED: 'forbidden',
  CS_SESSION_REQUIRED: 'unauthenticated',
  CS_INVITE_INVALID: 'not_found',
  CS_ASSERTION_INVALID: 'invalid_request',
  CS_REVIEWER_EXISTS: 'conflict',
  CS_IDEMPOTENCY_IN_FLIGHT: 'conflict',
  CS_IDEMPOTENCY_MISMATCH: 'unprocessable',
  CS_POLICY_ERROR: 'unavailable',
  CS_AUDIT_WRITE_FAILED: 'unavailable',
  CS_STORE_UNAVAILABLE: 'unavailable',
  CS_ISSUER_UNAVAILABLE: 'unavailable',
  CS_ISSUER_UNKNOWN: 'unavailable',
  CS_ISSUER_UNSUPPORTED: 'invalid_request',
  CS_LEASE_INACTIVE: 'unauthenticated',
  CS_MASTER_KEY_UNAVAILABLE: 'unavailable',
  CS_SECRET_NOT_FOUND: 'not_found',
  CS_SECRET_CORRUPT: 'unavailable',
  CS_SECRET_EXISTS: 'conflict',
  CS_KEY_USAGE_EXCEEDED: 'unavailable',
  CS_PROXY_FORBIDDEN: 'forbidden',
  CS_PROXY_DESTINATION_REFUSED: 'forbidden',
  CS_PROXY_UPSTREAM_FAILED: 'bad_gateway',
  CS_CONFIG_INVALID: 'invalid_request',
  CS_AUDIT_CHAIN_BROKEN: 'conflict',
  CS_TOO_MANY_PENDING: 'too_many',
} as const satisfies Record<string, ErrorCategory>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CountersignError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  /** Safe, structured details for the caller (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CountersignError';
    this.code = code;
    this.category = ERROR_CODES[code];
    this.details = options?.details;
  }
}

export function isCountersignError(value: unknown, code?: ErrorCode): value is CountersignError {
  return value instanceof CountersignError && (code === undefined || value.code === code);
}
