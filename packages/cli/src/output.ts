import { CountersignError } from '@countersign/core';
import { CountersignApiError } from '@countersign/sdk';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints an error as a newcomer should see it: code and message, no stack. Returns the exit code. */
export function reportError(error: unknown): number {
  if (error instanceof CountersignError || error instanceof CountersignApiError) {
    process.stderr.write(`error ${error.code}: ${error.message}\n`);
    return 1;
  }
  // fetch() says only "fetch failed"; the reason is in `cause` (an AggregateError when both
  // ::1 and 127.0.0.1 were tried).
  const cause = (error as { cause?: { code?: string; errors?: Array<{ code?: string }> } })?.cause;
  const codes = [cause?.code, ...(cause?.errors ?? []).map((e) => e.code)];
  if (error instanceof TypeError && (error.message === 'fetch failed' || codes.includes('ECONNREFUSED'))) {
    process.stderr.write(
      'error: cannot reach the Countersign server (is `npm start` running? see --server)\n',
    );
    return 1;
  }
  process.stderr.write(`error: ${(error as Error)?.message ?? String(error)}\n`);
  return 1;
}
