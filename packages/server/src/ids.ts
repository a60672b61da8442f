import { randomId } from '@countersign/core';

/**
 * A new unguessable handle (122 random bits): console challenges, reviewer ids, the reaper's
 * instance id. Stored rows of the domain get time-ordered ids from the context's `ids`
 * (core's `newRowId` with the Clock port's time; see core/src/ids.ts).
 */
export const newRandomId = randomId;
