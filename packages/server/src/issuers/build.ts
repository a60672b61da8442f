/**
 * Builds the configured issuers (createServer's one place for them). The built-in
 * `access_token` issuer is always there; `issuers:` in countersign.yaml adds named ones.
 */
import { DEFAULT_ISSUER } from '@countersign/core';
import type { ServerConfig } from '../config.js';
import type { SigningKey } from '../keys.js';
import { accessTokenIssuer } from './access-token.js';
import { postgresRoleOptions } from './config.js';
import { postgresRoleIssuer } from './postgres-role.js';
import type { IssuerEntry } from './registry.js';
import { type SecretVault, sealedSecretIssuer } from './sealed-secrets.js';
import { readSecretFile } from './secret-file.js';

export interface IssuerDeps {
  readonly config: ServerConfig;
  readonly signingKey: SigningKey;
  readonly vault: SecretVault;
}

export function buildIssuers(deps: IssuerDeps): Map<string, IssuerEntry> {
  const { config } = deps;
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
      default: {
        const unreachable: never = c;
        throw new TypeError(`unknown issuer kind ${JSON.stringify(unreachable)}`);
      }
    }
  }
  return entries;
}
