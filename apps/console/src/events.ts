import { useEffect, useRef, useState } from 'react';
import { EVENTS_URL, type ReviewEvent } from './api';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

function parseEvent(data: unknown): ReviewEvent | null {
  if (typeof data !== 'string') return null;
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value !== 'object' || value === null) return null;
    const { request_id, status } = value as Record<string, unknown>;
    if (typeof request_id !== 'string' || typeof status !== 'string') return null;
    return { request_id, status: status as ReviewEvent['status'] };
  } catch {
    return null;
  }
}

/**
 * Subscribes to `GET /v1/console/events` (Server-Sent Events). Calls `onChange(event)` for each
 * `review` event and `onChange(null)` whenever the stream (re)opens, so a caller can refetch what
 * it may have missed. Reconnects by itself if the server closes the stream.
 */
export function useReviewEvents(onChange: (event: ReviewEvent | null) => void): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const callback = useRef(onChange);
  callback.current = onChange;

  useEffect(() => {
    let source: EventSource | null = null;
    let retry: number | undefined;
    let opened = false;
    const connect = () => {
      source = new EventSource(EVENTS_URL, { withCredentials: false });
      source.addEventListener('open', () => {
        setState('live');
        if (opened) callback.current(null);
        opened = true;
      });
      source.addEventListener('review', (message) => {
        const event = parseEvent((message as MessageEvent).data);
        if (event) callback.current(event);
      });
      source.addEventListener('error', () => {
        setState('reconnecting');
        if (source?.readyState === EventSource.CLOSED) {
          source = null;
          // The server refused or closed the stream (for example an ended session): refetch, which
          // shows the login page on 401, and try again later.
          callback.current(null);
          retry = window.setTimeout(connect, 5000);
        }
      });
    };
    connect();
    return () => {
      window.clearTimeout(retry);
      source?.close();
    };
  }, []);

  return state;
}
