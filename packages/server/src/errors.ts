/** The one table that maps domain errors to the wire. Internals never leak. */
import { CountersignError, type ErrorCategory } from '@countersign/core';
import type { ErrorBody } from '@countersign/protocol';

export const STATUS: Record<ErrorCategory, 400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 502 | 503> = {
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unprocessable: 422,
  too_large: 413,
  too_many: 429,
  unavailable: 503,
  bad_gateway: 502,
};

export interface WireError {
  status: (typeof STATUS)[ErrorCategory] | 500;
  body: ErrorBody;
}

export function toWireError(error: unknown): WireError {
  if (error instanceof CountersignError) {
    return {
      status: STATUS[error.category],
      body: {
        error: {
          code: error.code,
          message: error.message,
          ...(error.details ? { details: { ...error.details } } : {}),
        },
      },
    };
  }
  return { status: 500, body: { error: { code: 'CS_INTERNAL', message: 'internal error' } } };
}
