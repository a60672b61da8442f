/**
 * The credential proxy's upstreams, built from `issuers.<name>.upstreams` (kind: proxy).
 * Secrets come from a 0600 file read at start, or from a sealed secret opened per request (so
 * a re-sealed value applies at once, and a missing master key fails closed).
 */
import { isAbsolute, join } from 'node:path';
import { CountersignError, parseResource } from '@countersign/core';
import type { z } from 'zod';
import { DEFAULT_PROXY_METHODS, type UpstreamConfigSchema } from '../issuers/config.js';
import type { SecretVault } from '../issuers/sealed-secrets.js';

export interface ProxyUpstream {
  readonly name: string;
  /** The proxy issuer that makes leases for it. */
  readonly issuer: string;
  readonly base: URL;
  readonly methods: Readonly<Record<string, readonly string[]>>;
  readonly allowPrivate: boolean;
  readonly timeoutMs: number;
  readonly maxRequestBytes: number;
  /** The header the secret goes into, and its value. Secret: never logged. */
  injection(): Promise<readonly [string, string]>;
}

/** A header value must not carry CR, LF or other controls (header injection). */
const HEADER_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

export function buildUpstream(
  issuer: string,
  name: string,
  c: z.infer<typeof UpstreamConfigSchema>,
  deps: { home: string; vault: SecretVault; readSecret: (path: string, what: string) => string },
): ProxyUpstream {
  const where = `issuers.${issuer}.upstreams.${name}`;
  const base = new URL(c.url);
  if (base.username || base.password || base.search || base.hash) {
    throw new CountersignError('CS_CONFIG_INVALID', `${where}.url: no credentials, query or fragment in it`);
  }
  if (base.protocol !== 'https:' && !(base.protocol === 'http:' && c.allow_private_networks)) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `${where}.url must be https (plain http only with allow_private_networks)`,
    );
  }
  const inject = c.inject;
  let fileSecret: string | null = null;
  if (inject.secret_file) {
    const path = isAbsolute(inject.secret_file) ? inject.secret_file : join(deps.home, inject.secret_file);
    fileSecret = deps.readSecret(path, `${where}.inject.secret_file`);
    if (!HEADER_VALUE.test(fileSecret)) {
      throw new CountersignError(
        'CS_CONFIG_INVALID',
        `${where}: the secret must be printable ASCII on one line`,
      );
    }
  }
  const secret = async (): Promise<string> => {
    if (fileSecret !== null) return fileSecret;
    const opened = await deps.vault.open(inject.sealed_secret!);
    try {
      const value = opened.value.toString('utf8');
      if (!HEADER_VALUE.test(value)) {
        throw new CountersignError(
          'CS_SECRET_CORRUPT',
          `sealed secret ${inject.sealed_secret} is not a header value`,
        );
      }
      return value;
    } finally {
      opened.value.fill(0);
    }
  };
  return {
    name,
    issuer,
    base,
    methods: c.methods ?? DEFAULT_PROXY_METHODS,
    allowPrivate: c.allow_private_networks,
    timeoutMs: c.timeout * 1000,
    maxRequestBytes: c.max_request_bytes,
    async injection() {
      const value = await secret();
      switch (inject.type) {
        case 'bearer':
          return ['authorization', `Bearer ${value}`] as const;
        case 'basic':
          return [
            'authorization',
            `Basic ${Buffer.from(`${inject.username}:${value}`).toString('base64')}`,
          ] as const;
        case 'header':
          return [inject.header.toLowerCase(), `${inject.prefix}${value}`] as const;
        default: {
          const unreachable: never = inject;
          throw new TypeError(`unknown injection ${JSON.stringify(unreachable)}`);
        }
      }
    },
  };
}

/** The upstream and path prefix a proxy resource (`https://<upstream>/<prefix...>`) names. */
export function proxyTarget(resource: string): { upstream: string; prefix: string[] } | string {
  let name: ReturnType<typeof parseResource>;
  try {
    name = parseResource(resource);
  } catch (error) {
    return (error as Error).message;
  }
  if (name.scheme !== 'https') return 'a proxied resource is https://<upstream>/<path>';
  const [upstream, ...prefix] = name.segments as [string, ...string[]];
  return { upstream, prefix };
}

/** The audience of a proxy lease's token: only this upstream's proxy endpoint accepts it. */
export function proxyAudience(issuerUrl: string, upstream: string): string {
  return `${issuerUrl}/proxy/${upstream}`;
}
