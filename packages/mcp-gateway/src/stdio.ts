/**
 * The gateway over stdio, for a local client that launches it: one session for the
 * connection, acting as the configured agent; its task is completed when stdin closes.
 */
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import type { McpGateway } from './gateway.js';

export interface RunningStdioGateway {
  /** Resolves when the client closed stdin and the session's task was completed. */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

export function serveGatewayStdio(gateway: McpGateway): RunningStdioGateway {
  const stdio = gateway.config.stdio;
  if (!stdio) throw new TypeError('the config has no stdio section');
  const session = gateway.newSession(stdio.agent);
  const handle = serveStdio(() => gateway.serverFor(session));
  let finish: () => void;
  const closed = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let ending: Promise<void> | null = null;
  const close = () => {
    ending ??= (async () => {
      await handle.close().catch(() => {});
      await gateway.endSession(session);
      finish();
    })();
    return ending;
  };
  process.stdin.once('end', () => void close());
  process.stdin.once('close', () => void close());
  return { closed, close };
}
