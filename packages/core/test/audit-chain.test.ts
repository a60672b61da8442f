/**
 * The hash-chained audit log (THREATS.md INV-7, group I, goal R5 CI tier).
 * A chain of ~200 realistic events is built with `chainEvent`; then 1,000 seeded single
 * mutations (field edits, byte flips in a stored column, deletions, forged insertions, swaps,
 * duplicates, truncations before the anchor) must all be detected, each at the position
 * where the chain really breaks. Reproduce a failure with AUDIT_SEED=<seed printed below>.
 */
import { describe, expect, it } from 'vitest';
import {
  type AuditEvent,
  type AuditEventInput,
  auditEventBody,
  auditEventHash,
  type ChainVerification,
  canonicalJson,
  chainEvent,
  GENESIS_HASH,
  verifyAuditChain,
} from '../src/index.js';

const SEED = process.env.AUDIT_SEED ? Number(process.env.AUDIT_SEED) : Date.now() % 2 ** 31;
const CHAIN_LENGTH = 200;
const MUTATIONS = 1000;

/** mulberry32: small, seedable, good enough to pick mutations reproducibly. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const TEXTS = [
  'Reconcile orders',
  'Überprüfung der Rechnungen für Q3',
  '請求書を照合する',
  'مراجعة الفواتير',
  'emoji 🔐🧾 and a ZWJ family 👩‍👩‍👧',
  'combining e\u0301 and \u2028 line separator',
  'bidi \u202Eexe.txt',
  'quote " backslash \\ tab \t newline \n',
  '',
];

function randomValue(r: Rng, depth: number): unknown {
  switch (depth > 3 ? r.int(4) : r.int(7)) {
    case 0:
      return r.pick(TEXTS) + String(r.int(1000));
    case 1:
      return r.int(2) === 0 ? r.int(1_000_000) : Math.round(r.next() * 1e6) / 100;
    case 2:
      return r.int(2) === 0;
    case 3:
      return null;
    case 4:
    case 5: {
      const out: Record<string, unknown> = {};
      for (let i = 0, n = 1 + r.int(4); i < n; i++)
        out[`${r.pick(['k', 'ключ', 'キー', 'x'])}${i}`] = randomValue(r, depth + 1);
      return out;
    }
    default:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
  }
}

const EVENT_TYPES = [
  'access_request.received',
  'access_request.decided',
  'review.opened',
  'review.vote',
  'lease.issued',
  'lease.revoked',
  'agent.added',
];

function randomInput(r: Rng, i: number): AuditEventInput {
  const data: Record<string, unknown> = { n: i, note: r.pick(TEXTS) };
  for (let k = 0, n = 1 + r.int(4); k < n; k++) data[`f${k}`] = randomValue(r, 1);
  return {
    type: r.pick(EVENT_TYPES),
    actor: r.pick([
      { type: 'agent', id: 'spiffe://acme.dev/agent/invoice-bot' },
      { type: 'system', id: 'checkpoint' },
      { type: 'reviewer', id: 'alice@acme.dev' },
      { type: 'operator', id: 'ops' },
    ] as const),
    requestId: r.int(4) === 0 ? null : `req_${r.int(10_000)}`,
    data,
  };
}

function buildChain(n: number, r: Rng): AuditEvent[] {
  const events: AuditEvent[] = [];
  let head: AuditEvent | null = null;
  const start = Date.parse('2026-11-24T10:00:00Z');
  for (let i = 0; i < n; i++) {
    head = chainEvent(head, randomInput(r, i), `evt_${i + 1}`, new Date(start + i * 1000).toISOString());
    events.push(head);
  }
  return events;
}

// ---------------------------------------------------------------------------------------------
// Mutations. Each returns the tampered rows and `breakAt`: the 1-based position of the first
// row that cannot verify (so `count`, the verified prefix, must be breakAt - 1).
// ---------------------------------------------------------------------------------------------

type Mutable = { -readonly [K in keyof AuditEvent]: AuditEvent[K] };
interface Mutation {
  readonly kind: string;
  readonly events: AuditEvent[];
  readonly breakAt: number;
}

function flipChar(s: string, r: Rng): string {
  if (s.length === 0) return 'x';
  for (;;) {
    const i = r.int(s.length);
    const unit = s.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdfff) continue; // keep the string well formed
    const flipped = unit ^ (1 << r.int(5));
    if (flipped >= 0xd800 && flipped <= 0xdfff) continue;
    return s.slice(0, i) + String.fromCharCode(flipped) + s.slice(i + 1);
  }
}

/** Stored column names, as a DB row would have them. */
const COLUMNS = [
  'type',
  'data',
  'actor_type',
  'actor_id',
  'at',
  'request_id',
  'prev_hash',
  'hash',
  'seq',
  'id',
];

/** A real change of one column of one row: never a no-op (checked through the canonical body). */
function editColumn(event: AuditEvent, column: string, r: Rng): AuditEvent {
  const e: Mutable = { ...event };
  switch (column) {
    case 'type':
      e.type = r.int(2) === 0 ? flipChar(e.type, r) : r.pick(EVENT_TYPES.filter((t) => t !== e.type));
      break;
    case 'actor_type':
      e.actor = { ...e.actor, type: e.actor.type === 'agent' ? 'reviewer' : 'agent' };
      break;
    case 'actor_id':
      e.actor = { ...e.actor, id: flipChar(e.actor.id, r) };
      break;
    case 'at':
      e.at = r.int(2) === 0 ? flipChar(e.at, r) : new Date(Date.parse(e.at) - 1000).toISOString();
      break;
    case 'request_id':
      e.requestId = e.requestId === null ? 'req_forged' : r.int(2) === 0 ? null : flipChar(e.requestId, r);
      break;
    case 'prev_hash':
      e.prevHash = flipChar(e.prevHash, r);
      break;
    case 'hash':
      e.hash = flipChar(e.hash, r);
      break;
    case 'seq':
      e.seq = r.pick([e.seq + 1, e.seq - 1, e.seq + 1000, 0, -1]);
      break;
    case 'id':
      e.id = flipChar(e.id, r);
      break;
    case 'data': {
      // A byte flip in the stored JSON text of the data column, kept only if it still parses
      // and means something else (a DB writer editing a value, a key, a number, an escape).
      const stored = JSON.stringify(e.data);
      for (;;) {
        const edited = flipChar(stored, r);
        let parsed: unknown;
        try {
          parsed = JSON.parse(edited);
        } catch {
          continue;
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) continue;
        try {
          if (canonicalJson(parsed) === canonicalJson(e.data)) continue;
        } catch {
          // The flip made something JCS refuses: still a change the verifier must catch.
        }
        e.data = parsed as Record<string, unknown>;
        break;
      }
      break;
    }
    default:
      throw new Error(column);
  }
  return e;
}

function mutate(chain: readonly AuditEvent[], r: Rng): Mutation {
  const n = chain.length;
  const events = [...chain];
  const kind = r.pick([
    'column',
    'column',
    'column',
    'rewrite-rehashed',
    'delete',
    'insert-chained',
    'insert-unlinked',
    'swap',
    'duplicate',
    'truncate-before-anchor',
  ]);
  switch (kind) {
    case 'column': {
      const i = r.int(n);
      const column = r.pick(COLUMNS);
      events[i] = editColumn(chain[i]!, column, r);
      return { kind: `column:${column}`, events, breakAt: i + 1 };
    }
    case 'rewrite-rehashed': {
      // A DB writer edits one row and recomputes that row's own hash: it verifies alone, and
      // the next row's prev_hash no longer points at it. (The last row is a new tail: see I5.)
      const i = r.int(n - 1);
      const original = chain[i]!;
      const e = editColumn(original, r.pick(['type', 'data', 'actor_id', 'at', 'request_id']), r);
      events[i] = { ...e, hash: auditEventHash(e) };
      return { kind, events, breakAt: i + 2 };
    }
    case 'delete': {
      const i = r.int(n - 1); // deleting the last row is a truncation, covered separately
      events.splice(i, 1);
      return { kind, events, breakAt: i + 1 };
    }
    case 'insert-chained': {
      // The best forgery without the chain's future: correct seq, prev_hash and hash for its
      // place, spliced in before an existing row. It verifies; the row after it cannot.
      const p = r.int(n); // not at the very end: an append is a new tail, see the I5 limit test
      const head = p === 0 ? null : chain[p - 1]!;
      const forged = chainEvent(
        head,
        { type: 'lease.issued', actor: { type: 'system', id: 'issuer:forged' }, data: { forged: true } },
        `evt_forged_${p}`,
        chain[p]!.at,
      );
      events.splice(p, 0, forged);
      return { kind, events, breakAt: p + 2 };
    }
    case 'insert-unlinked': {
      // Correctly hashed over its own content but chained to some other row.
      const p = r.int(n);
      let k = r.int(n);
      if (k === p - 1) k = (k + 2) % n;
      const forged = chainEvent(
        chain[k]!,
        { type: 'review.vote', actor: { type: 'reviewer', id: 'mallory' }, data: { verdict: 'approve' } },
        `evt_unlinked_${p}`,
        chain[p]!.at,
      );
      events.splice(p, 0, forged);
      return { kind, events, breakAt: p + 1 };
    }
    case 'swap': {
      const i = r.int(n - 1);
      const j = i + 1 + r.int(n - 1 - i);
      [events[i], events[j]] = [events[j]!, events[i]!];
      return { kind, events, breakAt: i + 1 };
    }
    case 'duplicate': {
      const i = r.int(n);
      const q = r.int(n + 1); // the copy lands before row q
      events.splice(q, 0, chain[i]!);
      // Copy at q=i or q=i+1: the first of the twins verifies, the second one breaks.
      return { kind, events, breakAt: q === i || q === i + 1 ? i + 2 : q + 1 };
    }
    default: {
      // Rows removed from the tail, detected only against the exported head (the anchor).
      const k = 1 + r.int(n - 1);
      events.splice(n - k, k);
      return { kind, events, breakAt: n - k + 1 };
    }
  }
}

function describeResult(result: ChainVerification): string {
  return JSON.stringify(result);
}

describe('audit chain verification (INV-7, R5)', () => {
  const r = rng(SEED);
  const chain = buildChain(CHAIN_LENGTH, r);
  const head = { seq: chain.at(-1)!.seq, hash: chain.at(-1)!.hash };

  it('I2 an untouched chain of 200 varied events verifies, with and without the exported head', () => {
    expect(verifyAuditChain(chain)).toEqual({ ok: true, count: CHAIN_LENGTH, headHash: head.hash });
    expect(verifyAuditChain(chain, head)).toEqual({ ok: true, count: CHAIN_LENGTH, headHash: head.hash });
    expect(chain[0]!.prevHash).toBe(GENESIS_HASH);
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: CHAIN_LENGTH }, (_, i) => i + 1));
    // Each event links to the previous one.
    for (let i = 1; i < chain.length; i++) expect(chain[i]!.prevHash).toBe(chain[i - 1]!.hash);
  });

  it(`I2 I3 I5 R5 ${MUTATIONS} random single mutations are all detected at the right position`, () => {
    console.log(`audit mutation seed: AUDIT_SEED=${SEED}`);
    const m = rng(SEED ^ 0x5bd1e995);
    const byKind = new Map<string, number>();
    const failures: string[] = [];
    for (let t = 0; t < MUTATIONS; t++) {
      const mutation = mutate(chain, m);
      byKind.set(mutation.kind, (byKind.get(mutation.kind) ?? 0) + 1);
      const truncation = mutation.kind === 'truncate-before-anchor';
      // With the anchor, a different row that verified into the head's position fails right there
      // (e.g. a forgery chained in just before the last row takes the head's seq).
      const atHead = mutation.events[CHAIN_LENGTH - 1];
      const anchoredBreakAt =
        mutation.breakAt > CHAIN_LENGTH && atHead !== undefined && atHead.hash !== head.hash
          ? CHAIN_LENGTH
          : mutation.breakAt;
      const results: Array<[ChainVerification, number]> = truncation
        ? [[verifyAuditChain(mutation.events, head), mutation.breakAt]]
        : [
            [verifyAuditChain(mutation.events), mutation.breakAt],
            [verifyAuditChain(mutation.events, head), anchoredBreakAt],
          ];
      for (const [result, breakAt] of results) {
        const where = `#${t} ${mutation.kind} (breaks at ${breakAt}): ${describeResult(result)}`;
        if (result.ok) {
          failures.push(`undetected ${where}`);
          continue;
        }
        if (result.count !== breakAt - 1) failures.push(`wrong position ${where}`);
        if (truncation && result.seq !== head.seq) failures.push(`truncation must name the head ${where}`);
      }
    }
    console.log(`audit mutations by kind: ${JSON.stringify(Object.fromEntries([...byKind].sort()))}`);
    expect(failures).toEqual([]);
    expect(byKind.size).toBeGreaterThanOrEqual(12);
  });

  it('I2 an edit of any content column names that event by seq and id', () => {
    const r2 = rng(SEED + 1);
    for (const column of [
      'type',
      'data',
      'actor_type',
      'actor_id',
      'at',
      'request_id',
      'prev_hash',
      'hash',
      'id',
    ]) {
      const i = 1 + r2.int(CHAIN_LENGTH - 2);
      const events = [...chain];
      events[i] = editColumn(chain[i]!, column, r2);
      const result = verifyAuditChain(events);
      expect(result, column).toMatchObject({ ok: false, count: i, seq: i + 1 });
      if (column !== 'id') expect(result, column).toMatchObject({ eventId: chain[i]!.id });
    }
  });

  it('I2 I3 a wrong seq, a deletion, a swap or a duplicate names the position where the chain breaks', () => {
    // The verifier documents `seq` as "sequence number (or position, when seq itself is wrong)
    // of the first bad event". A row whose seq was rewritten to 1 must not send the auditor to
    // the untouched event 1.
    const cases: Array<[string, AuditEvent[], number]> = [];
    const rewritten = [...chain];
    rewritten[49] = { ...chain[49]!, seq: 1 };
    cases.push(['seq rewritten to 1', rewritten, 50]);
    const deleted = [...chain];
    deleted.splice(49, 1);
    cases.push(['event 50 deleted', deleted, 50]);
    const swapped = [...chain];
    [swapped[49], swapped[119]] = [swapped[119]!, swapped[49]!];
    cases.push(['events 50 and 120 swapped', swapped, 50]);
    const duplicated = [...chain];
    duplicated.splice(50, 0, chain[49]!);
    cases.push(['event 50 duplicated right after itself', duplicated, 51]);
    for (const [name, events, position] of cases) {
      const result = verifyAuditChain(events);
      expect(result, name).toMatchObject({ ok: false, count: position - 1 });
      expect(result.ok === false && result.seq, name).toBe(position);
    }
  });

  it('I1 truncating the tail is NOT detected without an anchor (stated limit) but IS with expectedHead', () => {
    for (const k of [1, 2, 10, CHAIN_LENGTH - 1, CHAIN_LENGTH]) {
      const truncated = chain.slice(0, CHAIN_LENGTH - k);
      // Stated limit (audit.ts header, THREATS.md 3.1): the chain alone cannot see a shorter tail.
      const alone = verifyAuditChain(truncated);
      expect(alone.ok, `k=${k} without anchor`).toBe(true);
      expect(alone.count).toBe(CHAIN_LENGTH - k);
      const anchored = verifyAuditChain(truncated, head);
      expect(anchored, `k=${k} with anchor`).toMatchObject({
        ok: false,
        count: CHAIN_LENGTH - k,
        seq: head.seq,
        eventId: null,
      });
      expect(anchored.ok === false && anchored.reason).toMatch(/truncated/);
    }
  });

  it('I1 truncation across an older anchor: detected iff rows at or before the anchor are gone', () => {
    const anchorSeq = 150;
    const anchor = { seq: anchorSeq, hash: chain[anchorSeq - 1]!.hash };
    for (let length = 0; length <= CHAIN_LENGTH; length += 5) {
      const result = verifyAuditChain(chain.slice(0, length), anchor);
      // Rows written after the last exported head can vanish unseen: the bounded window of 3.1.
      expect(result.ok, `kept ${length} rows, anchor at ${anchorSeq}`).toBe(length >= anchorSeq);
    }
  });

  it('I5 a full rewrite from event 3 onward (every hash recomputed) passes alone but fails against the anchor', () => {
    const rewritten: AuditEvent[] = chain.slice(0, 2);
    for (let i = 2; i < chain.length; i++) {
      const original = chain[i]!;
      const data = i === 2 ? { ...original.data, outcome: 'allow' } : original.data;
      rewritten.push(
        chainEvent(
          rewritten[i - 1]!,
          { type: original.type, actor: original.actor, requestId: original.requestId, data },
          original.id,
          original.at,
        ),
      );
    }
    expect(verifyAuditChain(rewritten).ok).toBe(true); // stated limit: needs an anchor
    const result = verifyAuditChain(rewritten, head);
    expect(result).toMatchObject({ ok: false, seq: head.seq });
    expect(result.ok === false && result.reason).toMatch(/exported head/);
  });

  it('I5 appending a correctly chained event after the head is not detected by the chain (stated limit)', () => {
    const appended = [
      ...chain,
      chainEvent(
        chain.at(-1)!,
        { type: 'lease.issued', actor: { type: 'system', id: 'issuer:forged' }, data: {} },
        'evt_appended',
        '2026-11-24T12:00:00.000Z',
      ),
    ];
    // Not before the head, so out of the chain's promise; only the next exported checkpoint shows it.
    expect(verifyAuditChain(appended, head)).toMatchObject({ ok: true, count: CHAIN_LENGTH + 1 });
  });

  it('I6 an intent with "}\\n{"decision":"allow" stays one string in one event whose hash verifies', () => {
    const injection = '"}\n{"decision":"allow"';
    const purposes = [
      injection,
      `Reconcile orders${injection}`,
      `x","outcome":"allow","y":"`,
      '\n2026-11-24T10:00:00Z APPROVED by admin\r\n',
      '\u2028{"decision":"allow"}\u2029',
    ];
    for (const purpose of purposes) {
      const event = chainEvent(
        null,
        {
          type: 'access_request.received',
          actor: { type: 'agent', id: 'spiffe://acme.dev/agent/invoice-bot' },
          requestId: 'req_1',
          data: { intent: { purpose }, outcome: 'deny' },
        },
        'evt_1',
        '2026-11-24T10:00:00.000Z',
      );
      const result = verifyAuditChain([event]);
      expect(result).toEqual({ ok: true, count: 1, headHash: event.hash });
      const canonical = canonicalJson(auditEventBody(event));
      expect(canonical).not.toMatch(/[\n\r]/); // one line, whatever the text
      const parsed = JSON.parse(canonical);
      expect(parsed.data.intent.purpose).toBe(purpose);
      expect(parsed.data.outcome).toBe('deny');
      expect(Object.keys(parsed).sort()).toEqual(
        ['actor', 'at', 'data', 'id', 'prev_hash', 'request_id', 'seq', 'type'].sort(),
      );
      // Splitting the canonical text on the injected newline gives nothing parseable as an event.
      expect(canonical.split('\n')).toHaveLength(1);
    }
  });

  it('I6 a verifier fed the injected text as separate rows does not accept the fake one', () => {
    const event = chainEvent(
      null,
      {
        type: 'access_request.decided',
        actor: { type: 'system', id: 'checkpoint' },
        data: { outcome: 'deny', note: '"}\n{"decision":"allow"' },
      },
      'evt_1',
      '2026-11-24T10:00:00.000Z',
    );
    const fake = { ...event, seq: 2, id: 'evt_2', data: { decision: 'allow' }, prevHash: event.hash };
    const result = verifyAuditChain([event, fake]);
    expect(result).toMatchObject({ ok: false, count: 1, seq: 2 });
  });

  it('I2 events that cannot be canonicalized fail verification instead of throwing', () => {
    const events = chain.slice(0, 5).map((e) => ({ ...e }));
    events[3] = { ...events[3]!, data: { bad: Number.NaN } };
    expect(verifyAuditChain(events)).toMatchObject({ ok: false, count: 3, seq: 4 });
    events[3] = { ...chain[3]!, data: { bad: '\ud800' } };
    expect(verifyAuditChain(events)).toMatchObject({ ok: false, count: 3, seq: 4 });
  });
});
