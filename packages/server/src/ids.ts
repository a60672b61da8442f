import { randomBytes } from 'node:crypto';

/** A new unique id with a readable prefix: `req_…`, `lease_…` (128 random bits). */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}
