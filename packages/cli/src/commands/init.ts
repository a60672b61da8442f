import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE, generateSigningKeyFile } from '@countersign/server';
import { EXAMPLES_DIR } from '../home.js';

export interface InitOptions {
  readonly home: string;
  readonly dev: boolean;
}

function configText(dev: boolean): string {
  return `# Countersign configuration. Paths are relative to this directory.
# Reference: docs/configuration.md
dev: ${dev}
# issuer: https://countersign.example.com   # external URL; agents' assertions use it as aud
store:
  sqlite:
    file: countersign.db
policies:
  dir: policies
  schema: schema.cedarschema
catalog: catalog.yaml
signing_key_file: keys/signing-key.jwk
checkpoint:
  default_max_ttl: 1h
  default_deadline: 15m
  # Requests no policy covers are denied; name a group to send them to people instead.
  fallback_review_group: null
  # The most pending reviews one agent may have at once; over it: 429 CS_TOO_MANY_PENDING,
  # audited (one agent cannot flood the reviewers' queue). null: no cap.
  max_pending_per_agent: 10
credentials:
  default_ttl: 15m
# Action names beyond read/write/delete/admin/export/share: exact, or a prefix ending in *.
# The MCP gateway names each tool call mcp:<upstream>:<tool> (docs/mcp-gateway.md).
action_classes:
  "mcp:github:*": write
  "mcp:github:get_*": read
  "mcp:github:list_*": read
  "mcp:github:delete_*": delete
  "mcp:docs:*": read
introspection:
  # Resource servers that may introspect any lease: id and the SHA-256 (hex) of their secret.
  resource_servers: []
`;
}

/** Lays out a data dir: config, example policies, schema, catalog and a signing key. */
export async function initHome(options: InitOptions): Promise<{ created: string[]; existed: boolean }> {
  const { home } = options;
  if (existsSync(join(home, CONFIG_FILE))) return { created: [], existed: true };
  mkdirSync(join(home, 'policies'), { recursive: true, mode: 0o700 });
  const created: string[] = [];
  writeFileSync(join(home, CONFIG_FILE), configText(options.dev), { mode: 0o600 });
  created.push(CONFIG_FILE);
  for (const name of readdirSync(join(EXAMPLES_DIR, 'policies'))
    .filter((f) => f.endsWith('.cedar'))
    .sort()) {
    copyFileSync(join(EXAMPLES_DIR, 'policies', name), join(home, 'policies', name));
    created.push(`policies/${name}`);
  }
  // The example set ships with its tests (`countersign policy test`).
  mkdirSync(join(home, 'policies', 'tests'), { recursive: true, mode: 0o700 });
  for (const name of readdirSync(join(EXAMPLES_DIR, 'policies', 'tests'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    copyFileSync(join(EXAMPLES_DIR, 'policies', 'tests', name), join(home, 'policies', 'tests', name));
    created.push(`policies/tests/${name}`);
  }
  copyFileSync(join(EXAMPLES_DIR, 'schema.cedarschema'), join(home, 'schema.cedarschema'));
  copyFileSync(join(EXAMPLES_DIR, 'catalog.yaml'), join(home, 'catalog.yaml'));
  created.push('schema.cedarschema', 'catalog.yaml');
  await generateSigningKeyFile(join(home, 'keys', 'signing-key.jwk'));
  created.push('keys/signing-key.jwk');
  return { created, existed: false };
}
