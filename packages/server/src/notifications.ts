/**
 * Webhook delivery from the outbox, signed the Standard Webhooks way: `webhook-id` (stable
 * across retries, so receivers dedupe), `webhook-timestamp`, and `webhook-signature`
 * (HMAC-SHA256 over `id.timestamp.body`, by the `standardwebhooks` reference library).
 * Only operator-configured URLs; no redirects followed; retries with exponential backoff.
 */
import type { Clock, Store } from '@countersign/core';
import type pino from 'pino';
import { Webhook } from 'standardwebhooks';

export interface WebhookConfig {
  readonly name: string;
  readonly url: string;
  /** `whsec_` + base64 secret, as Standard Webhooks defines it. */
  readonly secret: string;
}

export const MAX_ATTEMPTS = 10;
const TIMEOUT_MS = 5000;
/** How long a claimed notification stays with its claimer: the send timeout and a margin. */
export const CLAIM_MS = TIMEOUT_MS + 25_000;

/** 1 s, 2 s, 4 s … capped at one hour. */
export function backoffMs(attempts: number): number {
  return Math.min(3_600_000, 1000 * 2 ** Math.max(0, attempts - 1));
}

export interface NotificationDispatcher {
  /** Delivers what is due now; returns how many were delivered. */
  deliverDue(): Promise<number>;
}

export function createDispatcher(options: {
  store: Store;
  clock: Clock;
  issuer: string;
  webhooks: readonly WebhookConfig[];
  log: pino.Logger;
  fetch?: typeof fetch;
}): NotificationDispatcher {
  const byName = new Map(options.webhooks.map((w) => [w.name, { config: w, signer: new Webhook(w.secret) }]));
  const doFetch = options.fetch ?? fetch;
  let running: Promise<number> | null = null;

  async function deliverDue(): Promise<number> {
    const now = options.clock.now();
    const due = await options.store.read((tx) => tx.listDueOutbox(now, 50));
    let delivered = 0;
    for (const item of due) {
      // Several instances run this loop: claim the item first (compare-and-set), so each
      // notification is sent by one of them. A claimer that dies leaves it due again when the
      // claim runs out; the receiver dedupes the retry by its stable webhook-id.
      const claimed = await options.store.transaction((tx) =>
        tx.claimOutbox(item.id, item.nextAttemptAt, options.clock.now() + CLAIM_MS),
      );
      if (!claimed) continue;
      const hook = byName.get(item.subscriber);
      const attempts = item.attempts + 1;
      let error: string | null = null;
      if (!hook) {
        error = `no webhook named ${item.subscriber} is configured`;
      } else {
        const payload = item.payload as { type: string; timestamp: string; data: Record<string, unknown> };
        // The deep link into the console: a reviewer decides there, with a passkey.
        const link = item.requestId ? `${options.issuer}/console/#/requests/${item.requestId}` : null;
        const body = JSON.stringify({ ...payload, data: { ...payload.data, link } });
        const sentAt = new Date(options.clock.now());
        try {
          const res = await doFetch(hook.config.url, {
            method: 'POST',
            redirect: 'manual',
            signal: AbortSignal.timeout(TIMEOUT_MS),
            headers: {
              'content-type': 'application/json',
              'user-agent': 'Countersign-Webhooks/1',
              'webhook-id': item.id,
              'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
              'webhook-signature': hook.signer.sign(item.id, sentAt, body),
            },
            body,
          });
          await res.body?.cancel();
          if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
        } catch (e) {
          error = (e as Error).message;
        }
      }
      const at = options.clock.now();
      if (error === null) {
        await options.store.transaction(async (tx) => {
          if (await tx.markOutboxDelivered(item.id, at)) {
            await tx.appendAudit(
              {
                type: 'notification.delivered',
                actor: { type: 'system', id: 'notifier' },
                requestId: item.requestId,
                data: { message_id: item.id, subscriber: item.subscriber, event: item.type, attempts },
              },
              at,
            );
          }
        });
        delivered++;
      } else {
        const giveUp = attempts >= MAX_ATTEMPTS;
        options.log.warn(
          { message_id: item.id, subscriber: item.subscriber, attempts, error },
          'webhook delivery failed',
        );
        await options.store.transaction(async (tx) => {
          await tx.markOutboxAttempt(item.id, attempts, at + backoffMs(attempts), error, giveUp ? at : null);
          if (giveUp) {
            await tx.appendAudit(
              {
                type: 'notification.failed',
                actor: { type: 'system', id: 'notifier' },
                requestId: item.requestId,
                data: { message_id: item.id, subscriber: item.subscriber, event: item.type, attempts, error },
              },
              at,
            );
          }
        });
      }
    }
    return delivered;
  }

  return {
    // One pass at a time: overlapping timers never deliver one message twice concurrently.
    deliverDue() {
      running ??= deliverDue().finally(() => {
        running = null;
      });
      return running;
    },
  };
}
