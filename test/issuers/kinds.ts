/**
 * One driver per credential kind for the issuer contract suite: how to configure it, what to
 * ask for, and how to tell, at its real downstream, whether a credential still works.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { leaseState } from '@countersign/core';
import { generateMasterKey } from '@countersign/server';
import { parse, stringify } from 'yaml';
import type { Harness, TestAgent } from '../support/harness.js';
import {
  connectAs,
  createTargetDatabases,
  type FaultyRelay,
  startRelay,
  type TargetDatabases,
} from '../support/postgres.js';
import { startUpstream, type TestUpstream } from '../support/upstream.js';

export interface KindDriver {
  readonly kind: string;
  /** The issuer name the catalog uses for `resource`. */
  readonly issuer: string;
  readonly resource: string;
  readonly action: string;
  /** Per-test set-up before the server starts (target databases, upstreams). */
  setup?(): Promise<void>;
  /** Writes config and catalog into the data dir before the server starts. */
  configure(home: string): void;
  /** After the server started (seal the secret, start the upstream). */
  ready?(h: Harness): Promise<void>;
  teardown?(): Promise<void>;
  /**
   * Does the credential still grant access, asked of the downstream itself (a resource server
   * introspecting, a database login, the proxy's upstream)? For a sealed secret, whose value
   * cannot be recalled once released, this asks whether Countersign still honours the lease.
   */
  use(h: Harness, agent: TestAgent, credential: Record<string, any>): Promise<boolean>;
  /** The secret parts of a credential: they must appear in no audit event. */
  secrets(credential: Record<string, any>): string[];
  /** A downstream that can be made to fail revocations on purpose (THREATS.md C5). */
  readonly faults?: { break(): Promise<void>; heal(): Promise<void> };
}

/** Appends catalog entries to the data dir's catalog.yaml. */
export function addCatalogEntries(home: string, yamlEntries: string): void {
  appendFileSync(join(home, 'catalog.yaml'), `\n${yamlEntries}`);
}

/** Edits the data dir's countersign.yaml as a parsed object. */
export function editConfig(home: string, edit: (config: Record<string, any>) => void): void {
  const file = join(home, 'countersign.yaml');
  const config = parse(readFileSync(file, 'utf8')) as Record<string, any>;
  edit(config);
  writeFileSync(file, stringify(config));
}

const RESOURCE_SERVER = { id: 'contract-rs', secret: 'contract-resource-server-secret' };

/** Lets the test introspect as a configured resource server (RFC 7662 with HTTP Basic). */
export function addResourceServer(home: string): void {
  editConfig(home, (c) => {
    c.introspection = {
      resource_servers: [
        {
          id: RESOURCE_SERVER.id,
          secret_sha256: createHash('sha256').update(RESOURCE_SERVER.secret).digest('hex'),
        },
      ],
    };
  });
}

/** RFC 7662 introspection as a configured resource server does it. */
export async function introspect(h: Harness, token: string): Promise<boolean> {
  const res = await h.call('POST', '/oauth/introspect', {
    rawBody: new URLSearchParams({ token }).toString(),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${RESOURCE_SERVER.id}:${RESOURCE_SERVER.secret}`).toString('base64')}`,
    },
  });
  if (res.status !== 200) throw new Error(`introspection answered ${res.status}`);
  return ((await res.json()) as { active: boolean }).active;
}

export const accessTokenKind: KindDriver = {
  kind: 'access_token',
  issuer: 'access_token',
  resource: 'postgres://staging/app/orders',
  action: 'read',
  configure: addResourceServer,
  // A resource server that introspects every token it is shown.
  use: (h, _agent, credential) => introspect(h, credential.access_token),
  secrets: (credential) => [String(credential.access_token).split('.')[2]!],
};

/** A postgres_role issuer on the machine's PostgreSQL, its admin connection through a relay a test can cut. */
export function postgresKind(): KindDriver & { readonly dbs: TargetDatabases; readonly relay: FaultyRelay } {
  let dbs: TargetDatabases | null = null;
  let relay: FaultyRelay | null = null;
  return {
    kind: 'postgres_role',
    issuer: 'pg-local',
    get dbs() {
      return dbs!;
    },
    get relay() {
      return relay!;
    },
    get resource() {
      return `postgres://local/${dbs!.db}/public.orders`;
    },
    action: 'read',
    async setup() {
      dbs = await createTargetDatabases();
      relay = await startRelay();
    },
    configure(home) {
      editConfig(home, (c) => {
        c.issuers = {
          'pg-local': {
            kind: 'postgres_role',
            server: 'local',
            admin_url: `postgres://postgres@127.0.0.1:${relay!.port}/postgres`,
            // Agents connect to the server itself; only the admin path goes through the relay.
            connect_host: '127.0.0.1',
            connect_port: 5432,
            role_prefix: dbs!.rolePrefix,
            timeout: '5s',
          },
        };
      });
      addCatalogEntries(
        home,
        `  - pattern: postgres://local/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    audience: postgres://local
    issuer: pg-local
`,
      );
    },
    async teardown() {
      await relay?.close();
      await dbs?.drop();
    },
    // The database itself answers: can this role log in and read its table?
    async use(_h, _agent, credential) {
      let client: Awaited<ReturnType<typeof connectAs>>;
      try {
        client = await connectAs(credential);
      } catch {
        return false;
      }
      try {
        await client.query('SELECT count(*) FROM public.orders');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => {});
      }
    },
    secrets: (credential) => [String(credential.password)],
    faults: {
      break: () => relay!.break(),
      heal: () => relay!.heal(),
    },
  };
}

/** Writes a master key file (0600) into the data dir and points the config at it. */
export function addMasterKey(home: string): string {
  mkdirSync(join(home, 'keys'), { recursive: true });
  writeFileSync(join(home, 'keys', 'master.key'), `${generateMasterKey()}\n`, { mode: 0o600 });
  editConfig(home, (c) => {
    c.secrets = { master_key_file: 'keys/master.key' };
  });
  return join(home, 'keys', 'master.key');
}

/** A sealed secret released through the `vault` issuer. */
export function sealedSecretKind(): KindDriver & { readonly canary: string } {
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  return {
    kind: 'sealed_secret',
    issuer: 'vault',
    resource: 'secret://contract/api-key',
    action: 'read',
    canary,
    configure(home) {
      addMasterKey(home);
      editConfig(home, (c) => {
        c.issuers = { ...c.issuers, vault: { kind: 'sealed_secret' } };
      });
      addCatalogEntries(
        home,
        `  - pattern: secret://contract/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: vault
`,
      );
    },
    async ready(h) {
      await h.server.deps.vault.put('contract/api-key', Buffer.from(canary), {
        type: 'operator',
        id: 'test',
      });
    },
    // A released value cannot be recalled: Countersign can only stop honouring the lease
    // (and never release it again). This asks exactly that.
    async use(h, _agent, credential) {
      if (credential.value !== canary) throw new Error('the released value is not the sealed one');
      const state = await leaseState({
        ctx: h.server.deps.ctx,
        input: { credentialId: credential.lease_id },
      });
      return state.active;
    },
    secrets: (credential) => [String(credential.value)],
  };
}

/** Writes a secret file (0600) into the data dir; returns its path relative to it. */
export function addSecretFile(home: string, name: string, value: string): string {
  mkdirSync(join(home, 'secrets'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, 'secrets', name), `${value}\n`, { mode: 0o600 });
  return `secrets/${name}`;
}

/** The credential proxy in front of a local upstream (private networks allowed for it, explicitly). */
export function proxyKind(): KindDriver & {
  readonly upstream: TestUpstream;
  readonly upstreamSecret: string;
} {
  let upstream: TestUpstream | null = null;
  const upstreamSecret = `upstream-secret-${randomBytes(12).toString('hex')}`;
  return {
    kind: 'proxy',
    issuer: 'api',
    resource: 'https://echo/v1',
    action: 'read',
    get upstream() {
      return upstream!;
    },
    upstreamSecret,
    async setup() {
      upstream = await startUpstream();
    },
    configure(home) {
      addResourceServer(home);
      const secretFile = addSecretFile(home, 'echo.token', upstreamSecret);
      editConfig(home, (c) => {
        c.issuers = {
          ...c.issuers,
          api: {
            kind: 'proxy',
            upstreams: {
              echo: {
                url: `${upstream!.url}/base`,
                inject: { type: 'bearer', secret_file: secretFile },
                allow_private_networks: true,
                timeout: '5s',
              },
            },
          },
        };
      });
      addCatalogEntries(
        home,
        `  - pattern: https://echo/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: api
`,
      );
    },
    async teardown() {
      await upstream?.close();
    },
    // The upstream itself answers (through the proxy) or the proxy refuses the lease.
    async use(h, _agent, credential) {
      const res = await h.call('GET', '/proxy/echo/v1/echo/ping', { token: credential.access_token });
      if (res.status === 200) {
        const seen = (await res.json()) as { headers: Record<string, string> };
        if (
          seen.headers.authorization !==
          `sha256:${createHash('sha256').update(`Bearer ${upstreamSecret}`).digest('hex')}`
        ) {
          throw new Error('the upstream did not receive its secret');
        }
        return true;
      }
      const body = (await res.json()) as { error: { code: string } };
      if (res.status === 401 && ['CS_LEASE_INACTIVE', 'CS_TOKEN_EXPIRED'].includes(body.error.code))
        return false;
      throw new Error(`unexpected proxy answer ${res.status} ${body.error.code}`);
    },
    secrets: (credential) => [String(credential.access_token).split('.')[2]!],
  };
}
