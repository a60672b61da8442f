/**
 * The audit-chain poll behind cross-instance wake-ups, on SQLite (where it is the only path
 * between processes sharing one file) with two stores on one file standing for two instances.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@countersign/store';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InstanceEvents, REQUEST_CHANGE_EVENTS } from '../packages/server/src/instance-events.js';
import { RequestWaiters } from '../packages/server/src/waiters.js';

let n = 0;
const ids = { next: (p: string) => `${p}_${++n}` };
const actor = { type: 'system' as const, id: 't' };

describe('request changes across instances by polling the audit chain', () => {
  let dir: string;
  let a: SqliteStore;
  let b: SqliteStore;
  let events: InstanceEvents;
  let waiters: RequestWaiters;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'countersign-events-'));
    a = SqliteStore.open({ file: join(dir, 'c.db'), ids });
    b = SqliteStore.open({ file: join(dir, 'c.db'), ids });
    waiters = new RequestWaiters();
    events = new InstanceEvents({
      waiters,
      store: a,
      channel: null,
      pollMs: 100,
      log: pino({ level: 'silent' }),
    });
  });
  afterEach(async () => {
    await events.close();
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('C2 a review decided through another instance wakes a waiter here within the poll interval', async () => {
    await b.transaction((tx) =>
      tx.appendAudit({ type: 'review.opened', actor, requestId: 'req_old', data: {} }, 1),
    );
    await events.start();
    const seen: string[] = [];
    waiters.subscribe((id) => seen.push(id));
    const woke = waiters.wait('req_1', 5000);
    const started = performance.now();
    await b.transaction(async (tx) => {
      await tx.appendAudit({ type: 'lease.issued', actor, requestId: 'req_2', data: {} }, 2);
      await tx.appendAudit({ type: 'review.decided', actor, requestId: 'req_1', data: {} }, 2);
    });
    expect(await woke).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);
    // History before the start is not news; events that change nothing a waiter sees are skipped.
    expect(seen).toEqual(['req_1']);
    expect(events.status()).toMatchObject({ mode: 'polling the audit chain', lastPollError: null });
  });

  it('more changes than one page between two polls all arrive', async () => {
    await events.start();
    const seen = new Set<string>();
    waiters.subscribe((id) => seen.add(id));
    await b.transaction(async (tx) => {
      for (let i = 0; i < 2500; i++) {
        await tx.appendAudit(
          {
            type: REQUEST_CHANGE_EVENTS[i % REQUEST_CHANGE_EVENTS.length]!,
            actor,
            requestId: `req_${i}`,
            data: {},
          },
          3,
        );
      }
    });
    await events.poll();
    expect(seen.size).toBe(2500);
  });
});
