/** A real Countersign on a real port (the browser needs one), on a temp SQLite file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inviteReviewer } from '@countersign/core';
import { type CountersignServer, createServer, loadConfig, newSessionToken } from '@countersign/server';
import { serve } from '@hono/node-server';
import { initHome } from '../../../packages/cli/src/commands/init.js';
import { type Harness, newKeyPair, TestClock } from '../../support/harness.js';

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

export interface LiveServer {
  readonly url: string;
  readonly server: CountersignServer;
  readonly home: string;
  invite(email: string, groups: string[]): Promise<string>;
  close(options?: { keepHome?: boolean }): Promise<void>;
}

export async function startLiveServer(
  options: { clock?: TestClock; configure?: (home: string) => void; home?: string } = {},
): Promise<LiveServer> {
  const home = options.home ?? mkdtempSync(join(tmpdir(), 'countersign-e2e-'));
  await initHome({ home, dev: true });
  options.configure?.(home);
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const server = await createServer(loadConfig({ home, port, issuer: url }), {
    logLevel: 'silent',
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const http = serve({ fetch: server.app.fetch, port, hostname: 'localhost' });
  await new Promise<void>((resolve) => http.once('listening', () => resolve()));
  return {
    url,
    server,
    home,
    async invite(email, groups) {
      const { token, tokenHash } = newSessionToken();
      await inviteReviewer({
        ctx: server.deps.ctx,
        actor: { type: 'operator', id: 'test' },
        input: { email, groups, tokenHash, ttlSeconds: 3600 },
      });
      return token;
    },
    async close(closeOptions = {}) {
      (http as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await server.close();
      if (!closeOptions.keepHome && !options.home) rmSync(home, { recursive: true, force: true });
    },
  };
}

export { type Harness, newKeyPair, TestClock };
