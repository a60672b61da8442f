/**
 * A real HTTP server standing in for an API behind the credential proxy. It reports what it
 * received (the injected secret only as a SHA-256 fingerprint, so answers never echo it),
 * streams on demand, redirects on demand, and counts every TCP connection it accepts.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export const fingerprint = (value: string) => createHash('sha256').update(value).digest('hex');

export interface TestUpstream {
  readonly port: number;
  readonly url: string;
  connections: number;
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  /** Resolves when a streaming request's first body chunk has arrived. */
  firstChunk: Promise<void>;
  /** The test calls this to let a streaming response finish. */
  release(): void;
  close(): Promise<void>;
}

export async function startUpstream(host = '127.0.0.1'): Promise<TestUpstream> {
  let releaseStream: () => void = () => {};
  let streamGate = new Promise<void>((r) => {
    releaseStream = r;
  });
  let markFirst: () => void = () => {};
  const state: TestUpstream = {
    port: 0,
    url: '',
    connections: 0,
    requests: [],
    firstChunk: new Promise<void>((r) => {
      markFirst = r;
    }),
    release: () => releaseStream(),
    close: async () => {},
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    state.requests.push({ method: req.method ?? '', url, headers: req.headers });
    const path = url.split('?')[0]!;
    if (path.startsWith('/base/v1/redirect-inside')) {
      res.writeHead(302, { location: '/base/v1/echo/moved?x=1' }).end();
      return;
    }
    if (path.startsWith('/base/v1/redirect-outside')) {
      res.writeHead(302, { location: 'https://evil.example/steal' }).end();
      return;
    }
    if (path.startsWith('/base/v1/redirect-above')) {
      res.writeHead(307, { location: '/elsewhere' }).end();
      return;
    }
    if (path.startsWith('/base/v1/stream-down')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first-chunk\n');
      await streamGate;
      res.end('last-chunk\n');
      return;
    }
    if (path.startsWith('/base/v1/stream-up')) {
      let bytes = 0;
      const hash = createHash('sha256');
      let first = true;
      for await (const chunk of req) {
        if (first) {
          first = false;
          markFirst();
        }
        bytes += (chunk as Buffer).length;
        hash.update(chunk as Buffer);
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
      return;
    }
    // Echo: what arrived, with any credential reduced to its fingerprint.
    let bytes = 0;
    for await (const chunk of req) bytes += (chunk as Buffer).length;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      const value = Array.isArray(v) ? v.join(', ') : (v ?? '');
      headers[k] = k === 'authorization' || k === 'x-api-key' ? `sha256:${fingerprint(value)}` : value;
    }
    res
      .writeHead(200, {
        'content-type': 'application/json',
        connection: 'close, x-hop',
        'x-hop': 'hop-value',
        'x-upstream': 'yes',
        // The proxy must not let an answer fetched with an injected credential be cached.
        'cache-control': 'public, max-age=3600',
      })
      .end(JSON.stringify({ method: req.method, url, headers, bytes }));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', () => {
    state.connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  return Object.assign(state, {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: async () => {
      releaseStream();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    resetStream() {
      streamGate = new Promise<void>((r) => {
        releaseStream = r;
      });
    },
  });
}
