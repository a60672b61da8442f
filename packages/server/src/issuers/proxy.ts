/**
 * The `proxy` issuer: a lease to call one upstream through Countersign's credential-injecting
 * proxy. The agent receives an access token (RFC 9068) whose audience is the proxy endpoint of
 * that upstream and whose authorization_details carry the action and the path prefix; the
 * upstream's own secret never leaves Countersign (routes/proxy.ts injects it per call).
 * Deterministic like any access token; nothing downstream to revoke: every proxied call checks
 * the lease's live state, so a revocation applies to the next call.
 */
import type { Grant, IssuedCredential, Issuer } from '@countersign/core';
import type { SigningKey } from '../keys.js';
import { type ProxyUpstream, proxyAudience, proxyTarget } from '../proxy/upstreams.js';
import { accessTokenIssuer } from './access-token.js';

export function proxyIssuer(options: {
  name: string;
  issuerUrl: string;
  key: SigningKey;
  upstreams: ReadonlyMap<string, ProxyUpstream>;
}): Issuer {
  const { issuerUrl, upstreams } = options;
  const upstreamOf = (resource: string) => {
    const t = proxyTarget(resource);
    if (typeof t === 'string') throw new TypeError(t);
    return t;
  };
  const inner = accessTokenIssuer({
    issuer: issuerUrl,
    key: options.key,
    kind: 'proxy',
    audience: (grant) => proxyAudience(issuerUrl, upstreamOf(grant.resource).upstream),
    supports({ action, resource }) {
      const t = proxyTarget(resource);
      if (typeof t === 'string') return t;
      const upstream = upstreams.get(t.upstream);
      if (!upstream || upstream.issuer !== options.name) {
        return `issuer ${options.name} has no upstream ${JSON.stringify(t.upstream)}`;
      }
      if (!upstream.methods[action]?.length) {
        return `upstream ${t.upstream} allows no HTTP method for action ${JSON.stringify(action)}`;
      }
      return null;
    },
  });
  return {
    ...inner,
    async issue(grant: Grant): Promise<IssuedCredential> {
      const issued = await inner.issue(grant);
      const t = upstreamOf(grant.resource);
      return {
        ...issued,
        credential: {
          ...issued.credential,
          proxy_url: [`${issuerUrl}/proxy/${t.upstream}`, ...t.prefix].join('/'),
        },
      };
    },
  };
}
