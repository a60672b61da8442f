/**
 * The gateway's own errors, with stable codes. A refused or failed tool call is not one of
 * these: it is a tool result with `isError: true` naming a code (see `toolError`).
 */
export type GatewayErrorCode =
  | 'CS_GATEWAY_CONFIG_INVALID'
  | 'CS_GATEWAY_CONFIG_UNREADABLE'
  | 'CS_GATEWAY_AGENT_KEY_INVALID'
  | 'CS_GATEWAY_UPSTREAM_UNAVAILABLE';

export class GatewayError extends Error {
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

/**
 * Codes a refused or failed tool call carries (in its text and in `_meta`), besides the
 * server's own `CS_*` codes (a deny's `error_code`, an authentication failure).
 */
export type ToolErrorCode =
  | 'CS_DENIED'
  | 'CS_REVIEW_EXPIRED'
  | 'CS_REVIEW_PENDING'
  | 'CS_REQUEST_WITHDRAWN'
  | 'CS_REVIEW_CANCELLED'
  | 'CS_TOOL_UNKNOWN'
  | 'CS_TOOL_NAME_UNSUPPORTED'
  | 'CS_RESOURCE_UNMAPPED'
  | 'CS_ARGUMENTS_INVALID'
  | 'CS_ARGUMENTS_MISMATCH'
  | 'CS_APPROVAL_USED'
  | 'CS_APPROVAL_NOT_GRANTED'
  | 'CS_SERVER_UNREACHABLE'
  | 'CS_UPSTREAM_FAILED';
