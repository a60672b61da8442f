/**
 * The audit chain: append-only events, each hashed over its predecessor's hash and its own
 * RFC 8785 canonical JSON: hash = SHA-256(prev_hash || JCS(event)). The verifier is small,
 * pure and exported on its own so an auditor can run it with nothing but the rows.
 *
 * What the chain proves: any change, deletion, insertion or reordering of events before the
 * head is detected. Removing events from the tail is only detected against a head hash
 * recorded elsewhere (the `expectedHead` argument); export the head regularly.
 */
import { canonicalJson, sha256Hex } from './digest.js';

export const GENESIS_HASH = '0'.repeat(64);

export type ActorType = 'agent' | 'operator' | 'reviewer' | 'system';

export interface AuditActor {
  readonly type: ActorType;
  readonly id: string;
}

/** What a use case asks to record. The store assigns seq, prev_hash and hash. */
export interface AuditEventInput {
  readonly type: string;
  readonly actor: AuditActor;
  readonly requestId?: string | null;
  readonly data: Readonly<Record<string, unknown>>;
}

/** One stored, chained event. */
export interface AuditEvent {
  readonly seq: number;
  readonly id: string;
  readonly at: string;
  readonly type: string;
  readonly actor: AuditActor;
  readonly requestId: string | null;
  readonly data: Readonly<Record<string, unknown>>;
  readonly prevHash: string;
  readonly hash: string;
}

/** The hashed body: everything but the hash itself. Field names are part of the format. */
export function auditEventBody(event: Omit<AuditEvent, 'hash'>): Record<string, unknown> {
  return {
    seq: event.seq,
    id: event.id,
    at: event.at,
    type: event.type,
    actor: { type: event.actor.type, id: event.actor.id },
    request_id: event.requestId,
    data: event.data,
    prev_hash: event.prevHash,
  };
}

export function auditEventHash(event: Omit<AuditEvent, 'hash'>): string {
  return sha256Hex(event.prevHash + canonicalJson(auditEventBody(event)));
}

/** Builds the next chained event from the current head. */
export function chainEvent(
  head: { seq: number; hash: string } | null,
  input: AuditEventInput,
  id: string,
  at: string,
): AuditEvent {
  const unhashed = {
    seq: head ? head.seq + 1 : 1,
    id,
    at,
    type: input.type,
    actor: input.actor,
    requestId: input.requestId ?? null,
    data: input.data,
    prevHash: head ? head.hash : GENESIS_HASH,
  };
  return { ...unhashed, hash: auditEventHash(unhashed) };
}

export type ChainVerification =
  | { readonly ok: true; readonly count: number; readonly headHash: string }
  | {
      readonly ok: false;
      readonly count: number;
      /** Sequence number (or position, when seq itself is wrong) of the first bad event. */
      readonly seq: number;
      readonly eventId: string | null;
      readonly reason: string;
    };

/**
 * Verifies events in storage order. Pure; feed it every row, oldest first.
 * `expectedHead`, when given, is a previously exported head: the chain must contain it.
 */
export function verifyAuditChain(
  events: Iterable<AuditEvent>,
  expectedHead?: { seq: number; hash: string },
): ChainVerification {
  let prev = GENESIS_HASH;
  let count = 0;
  let headSeen = expectedHead === undefined;
  for (const event of events) {
    const position = count + 1;
    const fail = (reason: string): ChainVerification => ({
      ok: false,
      count,
      // The position in the chain, which is where an auditor must look (a rewritten seq
      // would otherwise point at an untouched event).
      seq: position,
      eventId: typeof event.id === 'string' ? event.id : null,
      reason,
    });
    if (event.seq !== position)
      return fail(`expected sequence ${position}, found ${event.seq} (deleted, inserted or reordered event)`);
    if (event.prevHash !== prev)
      return fail('prev_hash does not match the previous event (deleted, inserted or reordered event)');
    let recomputed: string;
    try {
      recomputed = auditEventHash(event);
    } catch (error) {
      return fail(`event cannot be canonicalized: ${(error as Error).message}`);
    }
    if (recomputed !== event.hash) return fail('hash does not match the event contents (event changed)');
    if (expectedHead && event.seq === expectedHead.seq) {
      if (event.hash !== expectedHead.hash)
        return fail('event differs from the exported head (history rewritten)');
      headSeen = true;
    }
    prev = event.hash;
    count = position;
  }
  if (!headSeen) {
    return {
      ok: false,
      count,
      seq: expectedHead!.seq,
      eventId: null,
      reason: 'chain is shorter than the exported head (truncated)',
    };
  }
  return { ok: true, count, headHash: prev };
}
