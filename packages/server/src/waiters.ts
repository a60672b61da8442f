import { EventEmitter } from 'node:events';
import type { RequestEvents } from '@countersign/core';

const ANY = Symbol('any request');

/** Wakes long-polling agents in this process the moment their request changes. */
export class RequestWaiters implements RequestEvents {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  requestChanged(requestId: string): void {
    this.#emitter.emit(requestId);
    this.#emitter.emit(ANY, requestId);
  }

  /** Every change, for live views (the console's event stream). Returns the unsubscribe. */
  subscribe(listener: (requestId: string) => void): () => void {
    this.#emitter.on(ANY, listener);
    return () => this.#emitter.off(ANY, listener);
  }

  /** Resolves true when the request changes, false when `ms` pass or `signal` aborts. */
  wait(requestId: string, ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (changed: boolean) => {
        clearTimeout(timer);
        this.#emitter.off(requestId, onChange);
        signal?.removeEventListener('abort', onAbort);
        resolve(changed);
      };
      const onChange = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), Math.max(0, ms));
      this.#emitter.on(requestId, onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
