/**
 * How instances sharing one database tell each other that a request changed (PostgreSQL:
 * LISTEN/NOTIFY). Best effort by design: a notification may be lost (a dropped connection, a
 * crash between commit and publish), so every instance also polls the audit chain, and a lost
 * notification only delays a wake-up, never changes a decision.
 */
export interface ChangeChannelStatus {
  readonly listening: boolean;
  /** When the listening state last changed (epoch ms). */
  readonly since: number;
  /** Why it is not listening, or null. */
  readonly error: string | null;
}

export interface ChangeChannel {
  /** Announces a committed change of one request to every instance (coalesced, asynchronous). */
  publish(requestId: string): void;
  /**
   * Calls `onChange` with the ids other instances (and this one) announce. `onStatus` hears
   * every (re)connection and loss, so the caller can catch up on what it may have missed.
   */
  subscribe(
    onChange: (requestIds: string[]) => void,
    onStatus?: (status: ChangeChannelStatus) => void,
  ): () => void;
  status(): ChangeChannelStatus;
  close(): Promise<void>;
}
