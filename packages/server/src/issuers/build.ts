/**
 * Builds the configured issuers (createServer's one place for them). The built-in
 * `access_token` issuer is always there; `issuers:` in countersign.yaml adds named ones.
 */
import { CountersignError, DEFAULT_ISSUER } from '@countersign/core';
import type { ServerConfig } from '../config.js';
import type { SigningKey } from '../keys.js';
import { buildUpstream, type ProxyUpstream } from '../proxy/upstreams.js';
import { accessTokenIssuer } from './access-token.js';
import { postgresRoleOptions } from './config.js';
import { postgresRoleIssuer } from './postgres-role.js';
import { proxyIssuer } from './proxy.js';
import type { IssuerEntry } from './registry.js';
import { type SecretVault, sealedSecretIssuer } from './sealed-secrets.js';
import { readSecretFile } from './secret-file.js';

export interface IssuerDeps {
  readonly config: ServerConfig;
  readonly signingKey: SigningKey;
  readonly vault: SecretVault;
}

export interface BuiltIssuers {
  readonly entries: Map<string, IssuerEntry>;
  /** Every proxy issuer's upstreams, by name (unique across issuers). */
  readonly upstreams: Map<string, ProxyUpstream>;
}

export function buildIssuers(deps: IssuerDeps): BuiltIssuers {
  const { config } = deps;
  const upstreams = new Map<string, ProxyUpstream>();
  const entries = new Map<string, IssuerEntry>([
    [DEFAULT_ISSUER, { issuer: accessTokenIssuer({ issuer: config.issuer, key: deps.signingKey }) }],
  ]);
  for (const [name, c] of Object.entries(config.issuers)) {
    switch (c.kind) {
      case 'postgres_role': {
        const issuer = postgresRoleIssuer(postgresRoleOptions(name, c, config.home, readSecretFile));
        entries.set(name, { issuer, close: () => issuer.close() });
        break;
      }
      case 'sealed_secret': {
        const issuer = sealedSecretIssuer({ name, vault: deps.vault, actions: c.actions });
        entries.set(name, { issuer, unready: () => deps.vault.unavailable() });
        break;
      }
      case 'proxy': {
        const mine = new Map<string, ProxyUpstream>();
        for (const [upstreamName, u] of Object.entries(c.upstreams)) {
          if (upstreams.has(upstreamName)) {
            throw new CountersignError(
              'CS_CONFIG_INVALID',
              `issuers.${name}.upstreams.${upstreamName}: another proxy issuer already has this upstream`,
            );
          }
          const upstream = buildUpstream(name, upstreamName, u, {
            home: config.home,
            vault: deps.vault,
            readSecret: readSecretFile,
          });
          upstreams.set(upstreamName, upstream);
          mine.set(upstreamName, upstream);
        }
        const sealed = Object.values(c.upstreams).some((u) => u.inject.sealed_secret !== undefined);
        entries.set(name, {
          issuer: proxyIssuer({ name, issuerUrl: config.issuer, key: deps.signingKey, upstreams: mine }),
          ...(sealed ? { unready: () => deps.vault.unavailable() } : {}),
        });
        break;
      }
      default: {
        const unreachable: never = c;
        throw new TypeError(`unknown issuer kind ${JSON.stringify(unreachable)}`);
      }
    }
  }
  return { entries, upstreams };
}
