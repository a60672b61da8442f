/**
 * One proxied HTTP exchange: the agent's request goes to the checked address of the upstream
 * with the agent's credentials and hop-by-hop headers removed and the upstream's secret
 * injected; bodies stream both ways (never buffered); redirects are never followed.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CountersignError } from '@countersign/core';
import { checkDestination, type Resolver } from './destination.js';
import type { ProxyUpstream } from './upstreams.js';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus what the agent must never pass to the upstream. */
const STRIPPED_REQUEST = new Set([
  'authorization', // the agent's lease: the upstream gets its own secret instead
  'proxy-authorization',
  'cookie',
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'dpop',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);
const STRIPPED_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Fields the sender lists in Connection are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionListed(value: string | null | undefined): Set<string> {
  return new Set(
    (value ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

export interface ForwardInput {
  readonly upstream: ProxyUpstream;
  readonly method: string;
  /** The path below the upstream's base, already checked: `/segment/...`. */
  readonly path: string;
  /** `?…` as received, or ''. */
  readonly search: string;
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
  readonly injection: readonly [string, string];
  readonly resolve: Resolver;
  /** Where the agent reaches this upstream through the proxy (redirects are rewritten to it). */
  readonly proxyBase: string;
  readonly signal: AbortSignal;
}

function upstreamFailed(message: string, cause?: unknown): CountersignError {
  return new CountersignError(
    'CS_PROXY_UPSTREAM_FAILED',
    message,
    cause === undefined ? undefined : { cause },
  );
}

export async function forward(input: ForwardInput): Promise<Response> {
  const { upstream } = input;
  const declared = input.headers.get('content-length');
  if (declared !== null && (!/^[0-9]{1,16}$/.test(declared) || Number(declared) > upstream.maxRequestBytes)) {
    throw new CountersignError(
      'CS_BODY_TOO_LARGE',
      `request bodies through this upstream are at most ${upstream.maxRequestBytes} bytes`,
    );
  }
  const basePath = upstream.base.pathname.replace(/\/+$/, '');
  const target = new URL(upstream.base.href);
  const destination = await checkDestination(target, {
    allowPrivate: upstream.allowPrivate,
    resolve: input.resolve,
  });

  const listed = connectionListed(input.headers.get('connection'));
  const headers: Record<string, string> = {};
  input.headers.forEach((value, name) => {
    const key = name.toLowerCase();
    if (STRIPPED_REQUEST.has(key) || listed.has(key) || key === input.injection[0]) return;
    headers[key] = value;
  });
  headers.host = upstream.base.host;
  headers[input.injection[0]] = input.injection[1];

  // Connect to the address that was checked, never to a second resolution (DNS rebinding).
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        { address: destination.address, family: destination.family },
      ]);
    } else {
      callback(null, destination.address, destination.family);
    }
  };
  const hasBody = input.body !== null && input.method !== 'GET' && input.method !== 'HEAD';
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const hostname = target.hostname.replace(/^\[|\]$/g, '');

  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    const fail = (error: CountersignError) => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    const req = send({
      protocol: target.protocol,
      hostname,
      port: target.port || (target.protocol === 'https:' ? 443 : 80),
      method: input.method,
      path: `${basePath}${input.path}${input.search}`,
      headers,
      lookup,
      // TLS checks the certificate against the configured name, not the address.
      ...(target.protocol === 'https:' && isIP(hostname) === 0 ? { servername: hostname } : {}),
      agent: false,
      timeout: upstream.timeoutMs,
      signal: input.signal,
    });
    req.on('timeout', () => req.destroy(new Error('upstream timed out')));
    req.on('error', (error) =>
      fail(upstreamFailed(`the upstream ${upstream.name} failed: ${error.message}`, error)),
    );
    req.on('response', (res: IncomingMessage) => {
      settled = true;
      try {
        resolve(respond(res, input, target, basePath));
      } catch (error) {
        res.destroy();
        reject(error);
      }
    });

    if (!hasBody) {
      req.end();
      return;
    }
    let seen = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        if (seen > upstream.maxRequestBytes) {
          callback(
            new CountersignError(
              'CS_BODY_TOO_LARGE',
              `request bodies through this upstream are at most ${upstream.maxRequestBytes} bytes`,
            ),
          );
          return;
        }
        callback(null, chunk);
      },
    });
    const body = Readable.fromWeb(input.body as unknown as WebReadableStream<Uint8Array>);
    const abort = (error: Error) => {
      req.destroy(error);
      fail(
        error instanceof CountersignError
          ? error
          : upstreamFailed('the request body could not be read', error),
      );
    };
    body.on('error', abort);
    limit.on('error', abort);
    body.pipe(limit).pipe(req);
  });
}

function respond(res: IncomingMessage, input: ForwardInput, target: URL, basePath: string): Response {
  const status = res.statusCode ?? 502;
  const listed = connectionListed(res.headers.connection as string | undefined);
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined || STRIPPED_RESPONSE.has(name) || listed.has(name)) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  // Never follow a redirect. One that stays on the upstream comes back pointing at the proxy
  // (so the agent's next call is checked like this one); one that leaves it is refused.
  const location = res.headers.location;
  if (status >= 300 && status < 400 && location !== undefined) {
    let next: URL;
    try {
      next = new URL(location, target);
    } catch {
      throw upstreamFailed('the upstream answered a malformed redirect');
    }
    const inside = next.pathname === basePath || next.pathname.startsWith(`${basePath}/`);
    if (next.origin !== target.origin || !inside) {
      throw upstreamFailed('the upstream redirected outside itself: refused');
    }
    headers.set('location', `${input.proxyBase}${next.pathname.slice(basePath.length)}${next.search}`);
  }
  const empty = input.method === 'HEAD' || status === 204 || status === 304;
  if (empty) res.resume();
  const body = empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
  // A Response of our own skips the context's prepared headers (app.ts): set them here. An
  // answer fetched with an injected credential is never cacheable, whatever the upstream says.
  headers.set('cache-control', 'no-store');
  headers.set('x-content-type-options', 'nosniff');
  return new Response(body, { status: status < 200 ? 502 : status, headers });
}
