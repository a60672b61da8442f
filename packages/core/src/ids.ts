/**
 * Ids for stored rows. Time-ordered: 12 hex digits of the millisecond clock, then 20 of a
 * random UUID (74 random bits, as in a UUIDv7), so a new row lands at the right-hand edge of
 * every index keyed on its id instead of on a random page. With random ids each decision
 * dirtied a random B-tree page per such index (access_requests, leases, audit_events) and
 * SQLite wrote about 71 KB per auto-allow; time-ordered, about 20 KB (bench/micro/drive.ts).
 * Built from `randomUUID` (a cached entropy pool, about 0.5 µs) rather than a UUIDv7 library
 * whose per-call random draw cost about 6 µs.
 *
 * An id is a handle, never a secret: every read is authorised on its own (only the requesting
 * agent reads its request). It does reveal its creation time, which the record holds anyway.
 * Handles that must not be guessable (console challenges) use `randomId`.
 */

/**
 * A new time-ordered row id with a readable prefix: `req_…`, `lease_…`, `evt_…` (32 hex
 * digits). `nowMs` is the caller's wall clock (the domain reads no clock of its own).
 */
export function newRowId(prefix: string, nowMs: number): string {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs >= 2 ** 48) {
    throw new RangeError(`a row id needs a millisecond time in [0, 2^48), got ${nowMs}`);
  }
  const time = nowMs.toString(16).padStart(12, '0');
  return `${prefix}_${time}${globalThis.crypto.randomUUID().replaceAll('-', '').slice(12)}`;
}

/** A new unguessable id with a readable prefix: 122 random bits. */
export function randomId(prefix: string): string {
  return `${prefix}_${globalThis.crypto.randomUUID().replaceAll('-', '')}`;
}
