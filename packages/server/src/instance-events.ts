/**
 * Request changes across instances (the `RequestEvents` port). A change made here wakes this
 * process's waiters at once and is announced to the others (PostgreSQL NOTIFY). Changes made
 * elsewhere arrive by LISTEN, and, whatever happens to notifications, by polling the audit
 * chain: every change a waiter or a console can see writes an audit event that names its
 * request, and the chain's sequence numbers become visible in order, so a cursor over it
 * misses nothing. A lost notification therefore delays a wake-up by at most one poll
 * interval; it never changes a decision (waiters always re-read the store).
 */
import type { RequestEvents, Store } from '@countersign/core';
import type { ChangeChannel } from '@countersign/store';
import type pino from 'pino';
import type { RequestWaiters } from './waiters.js';

/**
 * Audit event types that change a request someone may be waiting on: a review opening, a
 * vote, and every way a pending request ends.
 */
export const REQUEST_CHANGE_EVENTS = [
  'review.opened',
  'review.vote',
  'review.decided',
  'review.expired',
  'review.cancelled',
  'access_request.withdrawn',
] as const;

const PAGE = 1000;

export interface InstanceEventsStatus {
  /** `listening`, `polling only (...)`, or `single process` (no channel). */
  readonly mode: string;
  readonly lastPollAt: number | null;
  readonly lastPollError: string | null;
  readonly received: number;
  readonly polled: number;
}

export class InstanceEvents implements RequestEvents {
  readonly #waiters: RequestWaiters;
  readonly #store: Store;
  readonly #channel: ChangeChannel | null;
  readonly #pollMs: number;
  readonly #log: pino.Logger;
  #cursor: number | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  #unsubscribe: (() => void) | null = null;
  #lastPollAt: number | null = null;
  #lastPollError: string | null = null;
  #received = 0;
  #polled = 0;

  constructor(options: {
    waiters: RequestWaiters;
    store: Store;
    channel: ChangeChannel | null;
    pollMs: number;
    log: pino.Logger;
  }) {
    this.#waiters = options.waiters;
    this.#store = options.store;
    this.#channel = options.channel;
    this.#pollMs = options.pollMs;
    this.#log = options.log;
  }

  requestChanged(requestId: string): void {
    this.#waiters.requestChanged(requestId);
    this.#channel?.publish(requestId);
  }

  /** Starts listening and polling (the server does; one-shot CLI commands only publish). */
  async start(): Promise<void> {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.poll(), this.#pollMs);
    this.#timer.unref();
    await this.poll();
    this.#unsubscribe =
      this.#channel?.subscribe(
        (ids) => {
          this.#received += ids.length;
          for (const id of ids) this.#waiters.requestChanged(id);
        },
        (status) => {
          if (status.listening) {
            this.#log.info('listening for request changes from other instances');
            // Whatever was announced while we were not listening: catch up now.
            void this.poll();
          } else {
            this.#log.warn(
              { err: status.error },
              'lost the change notification connection: polling only until it is back',
            );
          }
        },
      ) ?? null;
  }

  /** Reads the audit chain past the cursor and wakes waiters for every request it names. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = null;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    try {
      const head = await this.#store.read((tx) => tx.auditHeadSeq());
      if (this.#cursor === null) {
        // Start from the head as it is (even if the database was down when we started): what
        // happened before this instance was polling is not news.
        this.#cursor = head;
      }
      let cursor: number = this.#cursor;
      while (cursor < head) {
        const after = cursor;
        const rows: Array<{ seq: number; requestId: string }> = await this.#store.read((tx) =>
          tx.listRequestChanges(after, head, REQUEST_CHANGE_EVENTS, PAGE),
        );
        const ids = new Set(rows.map((r) => r.requestId));
        this.#polled += ids.size;
        for (const id of ids) this.#waiters.requestChanged(id);
        cursor = rows.length === PAGE ? rows[rows.length - 1]!.seq : head;
        this.#cursor = cursor;
      }
      this.#lastPollAt = Date.now();
      this.#lastPollError = null;
    } catch (error) {
      this.#lastPollError = (error as Error).message;
    }
  }

  status(): InstanceEventsStatus {
    const channel = this.#channel?.status();
    const mode = !this.#channel
      ? 'polling the audit chain'
      : channel?.listening
        ? 'listening (LISTEN/NOTIFY) and polling'
        : `polling only: ${channel?.error ?? 'not listening'}`;
    return {
      mode,
      lastPollAt: this.#lastPollAt,
      lastPollError: this.#lastPollError,
      received: this.#received,
      polled: this.#polled,
    };
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    await this.#polling;
  }
}
