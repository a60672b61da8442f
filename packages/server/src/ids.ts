import { newRowId, randomId } from '@countersign/core';

/**
 * A new row id (`req_…`, `lease_…`, `msg_…`): time-ordered, see core's ids.ts for why.
 * Console handles that must not be guessable use `newRandomId`.
 */
export const newId = (prefix: string): string => newRowId(prefix, Date.now());

/** A new unguessable handle (122 random bits), for console challenges and reviewer ids. */
export const newRandomId = randomId;
