/**
 * The composition root: `createServer(config)` is the one place that wires real adapters
 * to the domain's ports. Routes stay thin: validate, call a use case, map errors.
 */

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  type Clock,
  CountersignError,
  type DomainContext,
  expireReviews,
  newRowId,
  type PolicyEngine,
  ResourceCatalog,
  recordPolicyLoad,
  reviewerLoadReport,
  type Store,
  systemClock,
  taggedDigest,
  useSha256,
} from '@countersign/core';
import { type CedarPolicyEngine, policyEngineFromDirectory, readPolicyDirectory } from '@countersign/policy';
import { Hono } from 'hono';
import pino from 'pino';
import { loadCatalogFile, type ServerConfig } from './config.js';
import { toWireError } from './errors.js';
import { AgentIdentity } from './identity/agent-identity.js';
import type { AgentAuthenticator } from './identity/authenticator.js';
import { FederatedVerifier, type IssuerHealth } from './identity/federated.js';
import { PrivateKeyJwtAuthenticator } from './identity/private-key-jwt.js';
import { newRandomId } from './ids.js';
import { InstanceEvents } from './instance-events.js';
import { buildIssuers } from './issuers/build.js';
import { receiptSigner } from './issuers/receipt.js';
import { issuerRegistry, type ServerIssuers } from './issuers/registry.js';
import { loadMasterKey, type MasterKey, SecretVault } from './issuers/sealed-secrets.js';
import { loadSigningKey, type SigningKey } from './keys.js';
import {
  createMetrics,
  type Metrics,
  REVIEWER_LOAD_WINDOW_SECONDS,
  registerReviewerLoadMetrics,
  registerStoreMetrics,
  timed,
  timedSync,
} from './metrics.js';
import { createDispatcher } from './notifications.js';
import { type Resolver, systemResolver } from './proxy/destination.js';
import type { ProxyUpstream } from './proxy/upstreams.js';
import { createReaper, type Reaper } from './reaper.js';
import { agentRoutes } from './routes/agent.js';
import { consoleRoutes } from './routes/console.js';
import { consoleStaticRoutes } from './routes/console-static.js';
import { insightRoutes } from './routes/insights.js';
import { oauthRoutes } from './routes/oauth.js';
import { proxyRoutes } from './routes/proxy.js';
import { wellKnownRoutes } from './routes/well-known.js';
import { type OpenedStore, openStore } from './store.js';
import { RequestWaiters } from './waiters.js';

export interface ServerDeps {
  readonly config: ServerConfig;
  readonly ctx: DomainContext;
  readonly authenticator: AgentAuthenticator;
  /** Key availability of each trusted workload issuer (for /healthz). */
  readonly identityHealth: () => readonly IssuerHealth[];
  readonly signingKey: SigningKey;
  readonly metrics: Metrics;
  readonly waiters: RequestWaiters;
  /** Request changes across instances (LISTEN/NOTIFY and the audit-chain poll). */
  readonly events: InstanceEvents;
  /** Which store this instance runs on (no password). */
  readonly store: Pick<OpenedStore, 'kind' | 'description'>;
  readonly log: pino.Logger;
  readonly issuers: ServerIssuers;
  readonly reaper: Reaper;
  /** Sealed secrets (put, list, rotate-master-key); releases go through the sealed_secret issuer. */
  readonly vault: SecretVault;
  /** The credential proxy's upstreams by name (routes/proxy.ts). */
  readonly proxyUpstreams: ReadonlyMap<string, ProxyUpstream>;
  /** The policy sets of this process: the shadow candidate, and an in-process reload. */
  readonly policies: {
    readonly candidate: () => CedarPolicyEngine | null;
    readonly candidateError: () => string | null;
    /** Reloads the active set (audited like any reload) and the candidate; throws CS_POLICY_ERROR when the set does not load. */
    readonly reload: () => Promise<{ version: string; policyCount: number | null }>;
  };
  /** How the proxy resolves upstream names (a stub in tests). */
  readonly resolver: Resolver;
  /** Why the server cannot decide right now, or null when ready. */
  readonly unready: () => string | null;
  /** Why the newest policy files were refused while an older good set stays in force, or null. */
  readonly policyReloadRefused: () => string | null;
}

export interface CountersignServer {
  readonly app: Hono;
  readonly deps: ServerDeps;
  /** Records the policy load in the audit chain; a server that cannot write audit does not start. */
  recordStart(): Promise<void>;
  /** Starts background work (the review reaper, webhook delivery). */
  startBackground(): void;
  /** Delivers due notifications now (the background loop calls this every second). */
  deliverNotifications(): Promise<number>;
  /** One pass of the lease reaper now (the background loop runs it every `reaper_interval`). */
  reapLeases(): Promise<import('@countersign/core').ReapResult>;
  /**
   * Reads the policy directory again now (what SIGHUP does; the background loop polls every
   * 2 s): a changed set that loads is put in force, one that does not is refused.
   */
  reloadPolicies(): Promise<'unchanged' | 'loaded' | 'refused'>;
  close(): Promise<void>;
}

/** How often the background loop looks at the policy directory. */
export const POLICY_POLL_MS = 2000;

export interface ServerOverrides {
  readonly clock?: Clock;
  readonly store?: Store;
  readonly logLevel?: pino.Level | 'silent';
  /** Where SQLite writes run (default `thread`; `inline` for tools that want no thread). */
  readonly sqliteWriter?: 'inline' | 'thread';
  /** The sealed secrets' master key (base64url) instead of COUNTERSIGN_MASTER_KEY. */
  readonly masterKey?: string;
  /** How the credential proxy resolves upstream host names (tests pass a stub resolver). */
  readonly resolver?: Resolver;
  /** How often the background loop looks at the policy directory (default POLICY_POLL_MS). */
  readonly policyPollMs?: number;
}

/** What the driver or the OS said under our wrappers, so an operator sees why it failed closed. */
function rootCause(error: Error): string | undefined {
  let e: unknown = error.cause;
  if (e === undefined) return undefined;
  while (e instanceof Error && e.cause !== undefined && e.cause !== e) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function instrumentPolicy(engine: PolicyEngine, metrics: Metrics): PolicyEngine {
  return {
    version: engine.version,
    evaluate: (input) => timedSync(metrics, 'cedar', () => engine.evaluate(input)),
  };
}

function instrumentStore(store: Store, metrics: Metrics): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'transaction') {
        return <T>(work: Parameters<Store['transaction']>[0]) =>
          timed(metrics, 'commit', () => target.transaction(work) as Promise<T>);
      }
      if (prop === 'runUnit' && target.runUnit) {
        const run = target.runUnit.bind(target);
        return ((name, args) => timed(metrics, 'commit', () => run(name, args))) as Store['runUnit'];
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export async function createServer(
  config: ServerConfig,
  overrides: ServerOverrides = {},
): Promise<CountersignServer> {
  const log = pino({
    level: overrides.logLevel ?? (process.env.COUNTERSIGN_LOG_LEVEL as pino.Level | undefined) ?? 'info',
    // Invariant 7: no secret in logs, whatever a future log line tries to include.
    redact: {
      paths: ['req.headers.authorization', '*.access_token', '*.token', '*.password'],
      censor: '[redacted]',
    },
  });
  // The same function as core's portable SHA-256 (useSha256 checks known answers), from
  // node:crypto: seven times faster, and a decision hashes six to eight times.
  useSha256((text) => createHash('sha256').update(text, 'utf8').digest('hex'));
  const clock = overrides.clock ?? systemClock;
  let storeForMetrics: Store | null = null;
  const metrics = createMetrics({
    failingRevocations: async () =>
      storeForMetrics
        ? storeForMetrics.read((tx) => tx.countLeases({ status: 'revoke_pending', failing: true }))
        : 0,
  });
  // Row ids take their time from the Clock port, like every other time the domain records.
  const ids = { next: (prefix: string) => newRowId(prefix, clock.now()) };
  // Files first: a failure here must not leave a database pool open behind it.
  const signingKey = await loadSigningKey(config.signingKeyFile);
  const catalog = ResourceCatalog.from(loadCatalogFile(config.catalogFile), 'urn:countersign:uncatalogued');
  const opened: OpenedStore = overrides.store
    ? {
        store: overrides.store,
        kind: 'sqlite',
        description: 'provided by the caller',
        changes: null,
        warnings: [],
        stats: null,
      }
    : // The writer thread keeps statements and each group commit's fsync off the event loop.
      await openStore(config, ids, overrides.sqliteWriter ?? 'thread');
  for (const warning of opened.warnings) log.warn(warning);
  const rawStore = opened.store;
  storeForMetrics = rawStore;
  const store = instrumentStore(rawStore, metrics);

  // Fail closed (J1): a policy set that does not load leaves the server up but unready,
  // and every decision a deny with CS_POLICY_ERROR. Hot reload (the directory is polled, and
  // re-read on SIGHUP): a set that loads replaces the one in force; a set that does not is
  // refused (audit `policy.load_failed`) and the last known good set stays in force; with no
  // good set yet, the instance stays unready until one loads.
  let policyError: string | null = null;
  let engine: PolicyEngine;
  let policyCount: number | null = null;
  /** What the directory held at the last look (file names and texts), to load only changes. */
  let policySnapshot: string | null = null;
  /** Why the newest files were refused while a good set stays in force, or null. */
  let policyReloadRefused: string | null = null;
  const unloaded: PolicyEngine = {
    version: 'unloaded',
    evaluate: () => ({ kind: 'error', message: 'no valid policy set is loaded', policyIds: [] }),
  };
  const snapshotPolicies = (): string => {
    try {
      return JSON.stringify(readPolicyDirectory(config.policyDir, config.schemaFile));
    } catch (error) {
      return `unreadable: ${(error as Error).message}`;
    }
  };
  policySnapshot = snapshotPolicies();
  try {
    const cedar = policyEngineFromDirectory(config.policyDir, config.schemaFile);
    policyCount = cedar.policyCount;
    engine = instrumentPolicy(cedar, metrics);
  } catch (error) {
    policyError = (error as Error).message;
    log.error({ err: policyError }, 'policy set failed to load: every request will be denied');
    engine = unloaded;
  }

  // Shadow mode (issue 8): a candidate set beside the active one, never enforced. A candidate
  // that does not load only turns shadow mode off (and says so): it decides nothing.
  let candidate: CedarPolicyEngine | null = null;
  let candidateError: string | null = null;
  const loadCandidate = () => {
    candidate = null;
    candidateError = null;
    const dir = config.candidatePolicyDir;
    if (dir === null || !existsSync(dir)) return;
    try {
      candidate = policyEngineFromDirectory(dir, config.schemaFile);
    } catch (error) {
      candidateError = (error as Error).message;
      log.error(
        { err: candidateError },
        'the shadow candidate policy set failed to load: shadow mode is off',
      );
    }
  };
  loadCandidate();
  /**
   * Reloads the active set (through the same path as the poll and SIGHUP, which audits the
   * load) and the candidate, in this process, right after a suggested policy is adopted.
   */
  const reloadAfterAdoption = async () => {
    await reloadPolicies('adoption');
    loadCandidate();
    // Whether this reload or the poll just before it read the files: they are in force only
    // when the last look refused nothing ('unchanged' after a refused poll is still refused).
    const refused = policyReloadRefused ?? policyError;
    if (refused !== null) {
      throw new CountersignError(
        'CS_POLICY_ERROR',
        `the policy set with the adopted policy did not load; the last good set stays in force: ${refused}`,
      );
    }
    return { version: engine.version, policyCount };
  };

  // Sealed secrets' master key: from the environment or a key file, never from the store.
  let masterKey: MasterKey | null = null;
  let masterKeyProblem: string | null = null;
  try {
    masterKey = loadMasterKey({
      env: overrides.masterKey ?? process.env.COUNTERSIGN_MASTER_KEY,
      file: config.masterKeyFile,
    });
  } catch (error) {
    masterKeyProblem = (error as Error).message;
  }
  const masterKeyEnv = overrides.masterKey ?? process.env.COUNTERSIGN_MASTER_KEY;
  const vault = new SecretVault({
    ctx: { store, clock },
    masterKey,
    problem: masterKeyProblem,
    // A key file that is missing (or unsafe) at start is looked at again while requests need it.
    ...(config.masterKeyFile && !masterKeyEnv
      ? { reload: () => loadMasterKey({ file: config.masterKeyFile }) }
      : {}),
  });
  const { entries, upstreams } = buildIssuers({ config, signingKey, vault });
  const issuers = issuerRegistry(entries, metrics);
  // Fail closed (invariant 4): a catalog entry naming an issuer that is not configured denies
  // its requests (CS_ISSUER_UNKNOWN), and the instance reports itself unready until fixed.
  const unknownIssuers = catalog.issuerNames().filter((name) => !entries.has(name));
  if (unknownIssuers.length > 0) {
    log.error({ issuers: unknownIssuers }, 'the catalog names issuers that are not configured');
  }

  const waiters = new RequestWaiters();
  const events = new InstanceEvents({
    waiters,
    store: rawStore,
    channel: opened.changes,
    pollMs: config.eventsPollMs,
    log,
  });
  registerStoreMetrics(metrics, opened, events);
  const ctx: DomainContext = {
    store,
    clock,
    policy: () => engine,
    candidatePolicy: () => candidate,
    catalog: () => catalog,
    issuers,
    receipts: receiptSigner({ issuer: config.issuer, key: signingKey, clock }),
    risk: config.risk,
    checkpoint: {
      defaultMaxTtlSeconds: config.defaultMaxTtlSeconds,
      defaultDeadlineSeconds: config.defaultDeadlineSeconds,
      fallbackReviewGroup: config.fallbackReviewGroup,
    },
    ids,
    events,
    defaultTtlSeconds: config.defaultTtlSeconds,
    subscribers: config.webhooks.map((w) => w.name),
    configVersion: `sha256:${taggedDigest('countersign/config/v1\0', {
      risk: config.risk,
      action_classes: config.actionClasses,
      default_ttl_seconds: config.defaultTtlSeconds,
      default_max_ttl_seconds: config.defaultMaxTtlSeconds,
      default_deadline_seconds: config.defaultDeadlineSeconds,
      fallback_review_group: config.fallbackReviewGroup,
      task_idle_timeout_seconds: config.taskIdleTimeoutSeconds,
      // The credential templates (issuers' configuration, no secrets in it): an approval never
      // survives a change of what would be issued (THREATS.md INV-4 credential_template_hash).
      issuers: config.issuers,
    })}`,
    actionClasses: config.actionClasses,
    maxPendingReviewsPerAgent: config.maxPendingPerAgent,
    taskIdleTimeoutSeconds: config.taskIdleTimeoutSeconds,
  };
  registerReviewerLoadMetrics(metrics, () =>
    reviewerLoadReport({ ctx, input: { sinceMs: REVIEWER_LOAD_WINDOW_SECONDS * 1000 } }),
  );
  const identity = new AgentIdentity({
    clock,
    privateKeyJwt: new PrivateKeyJwtAuthenticator({ store: rawStore, clock, audience: config.issuer }),
    federated: config.trustedIssuers.map((t) => new FederatedVerifier(t, { store: rawStore, clock })),
  });
  const reaper = createReaper({ ctx, metrics, log, instanceId: newRandomId('reaper') });
  const deps: ServerDeps = {
    config,
    ctx,
    authenticator: identity,
    identityHealth: () => identity.health(),
    signingKey,
    metrics,
    waiters,
    events,
    store: { kind: opened.kind, description: opened.description },
    log,
    issuers,
    reaper,
    vault,
    proxyUpstreams: upstreams,
    policies: {
      candidate: () => candidate,
      candidateError: () => candidateError,
      reload: reloadAfterAdoption,
    },
    resolver: overrides.resolver ?? systemResolver,
    policyReloadRefused: () => policyReloadRefused,
    unready: () => {
      if (policyError) return `policy set failed to load: ${policyError}`;
      if (unknownIssuers.length > 0)
        return `the catalog names issuers that are not configured: ${unknownIssuers.join(', ')}`;
      return issuers.unready();
    },
  };

  /**
   * Looks at the policy directory again; loads it when its files changed. Returns what
   * happened. Never throws: a bad set is refused and recorded.
   */
  async function reloadPolicies(
    trigger: 'poll' | 'signal' | 'adoption',
  ): Promise<'unchanged' | 'loaded' | 'refused'> {
    const snapshot = snapshotPolicies();
    if (snapshot === policySnapshot) return 'unchanged';
    policySnapshot = snapshot;
    try {
      const cedar = policyEngineFromDirectory(config.policyDir, config.schemaFile);
      engine = instrumentPolicy(cedar, metrics);
      policyCount = cedar.policyCount;
      policyError = null;
      policyReloadRefused = null;
      metrics.policyReloads.inc({ result: 'loaded' });
      log.info({ version: cedar.version, policies: cedar.policyCount, trigger }, 'policy set loaded');
      await recordPolicyLoad({ ctx, input: { version: cedar.version, policyCount, error: null } }).catch(
        (error) => log.error({ err: (error as Error).message }, 'could not record the policy load'),
      );
      return 'loaded';
    } catch (error) {
      const message = (error as Error).message;
      metrics.policyReloads.inc({ result: 'refused' });
      if (engine === unloaded) policyError = message;
      else policyReloadRefused = message;
      log.error(
        { err: message, trigger, in_force: engine.version },
        engine === unloaded
          ? 'policy set failed to load: every request is still denied'
          : 'new policy files refused: the last good set stays in force',
      );
      await recordPolicyLoad({
        ctx,
        input: { version: engine.version, policyCount: null, error: message },
      }).catch((e) => log.error({ err: (e as Error).message }, 'could not record the refused policy load'));
      return 'refused';
    }
  }

  const app = new Hono();
  app.use('*', async (c, next) => {
    // Prepared before the handler, so they go into the response it builds (a route may
    // override Cache-Control: the JWKS is cacheable). Reading c.res afterwards made
    // @hono/node-server materialise every response as a Web Response with a stream body
    // instead of writing its string directly. A handler that returns a Response of its own
    // (the credential proxy) sets these itself.
    c.header('Cache-Control', 'no-store');
    c.header('X-Content-Type-Options', 'nosniff');
    await next();
  });
  app.onError((error, c) => {
    const wire = toWireError(error);
    if (wire.status >= 500) {
      log.error(
        {
          err:
            error instanceof Error
              ? { message: error.message, code: (error as CountersignError).code, cause: rootCause(error) }
              : error,
        },
        'request failed',
      );
    }
    if (wire.status === 503) metrics.failClosed.inc({ code: wire.body.error.code });
    if (wire.body.error.code === 'CS_TOO_MANY_PENDING') metrics.pendingCapRefusals.inc();
    // A route that made its answer cacheable and then failed must not make the error cacheable.
    c.header('Cache-Control', 'no-store');
    return c.json(wire.body, wire.status);
  });
  app.notFound((c) => c.json({ error: { code: 'CS_NOT_FOUND', message: 'no such endpoint' } }, 404));
  app.route('/', wellKnownRoutes(deps));
  app.route('/', agentRoutes(deps));
  app.route('/', oauthRoutes(deps));
  app.route('/', proxyRoutes(deps));
  app.route('/', consoleRoutes(deps));
  app.route('/', insightRoutes(deps));
  app.route('/', consoleStaticRoutes());

  const dispatcher = createDispatcher({
    store: rawStore,
    clock,
    issuer: config.issuer,
    webhooks: config.webhooks,
    log,
  });
  let timer: NodeJS.Timeout | null = null;
  let notifier: NodeJS.Timeout | null = null;
  let policyPoll: NodeJS.Timeout | null = null;
  return {
    app,
    deps,
    reloadPolicies: () => reloadPolicies('signal'),
    deliverNotifications: () => dispatcher.deliverDue(),
    reapLeases: () => reaper.runOnce(),
    async recordStart() {
      await recordPolicyLoad({ ctx, input: { version: engine.version, policyCount, error: policyError } });
    },
    startBackground() {
      if (timer) return;
      // Fetch every trusted issuer's keys now, so /healthz knows before the first call.
      identity
        .prefetch()
        .catch((error) =>
          log.error({ err: (error as Error).message }, 'workload issuer key prefetch failed'),
        );
      events
        .start()
        .catch((error) =>
          log.error({ err: (error as Error).message }, 'request change feed failed to start'),
        );
      const reapNow = () =>
        reaper
          .runOnce()
          .catch((error) => log.error({ err: (error as Error).message }, 'lease reaper failed'));
      // At start: intents a crash left behind and revocations due while we were down.
      void reapNow();
      // Every instance runs the reapers and the webhook loop: each item is taken by a
      // compare-and-set (a review expires once; a lease is claimed; a notification is claimed
      // once), so several instances do each item once between them.
      timer = setInterval(() => {
        expireReviews({ ctx }).catch((error) =>
          log.error({ err: (error as Error).message }, 'review reaper failed'),
        );
        void reapNow();
        rawStore
          .pruneTokenIds(clock.now())
          .catch((error) => log.error({ err: (error as Error).message }, 'token pruning failed'));
      }, config.reaperIntervalSeconds * 1000);
      timer.unref();
      policyPoll = setInterval(() => void reloadPolicies('poll'), overrides.policyPollMs ?? POLICY_POLL_MS);
      policyPoll.unref();
      if (config.webhooks.length > 0) {
        notifier = setInterval(() => {
          dispatcher
            .deliverDue()
            .catch((error) => log.error({ err: (error as Error).message }, 'webhook delivery failed'));
        }, 1000);
        notifier.unref();
      }
    },
    async close() {
      if (timer) clearInterval(timer);
      if (policyPoll) clearInterval(policyPoll);
      if (notifier) clearInterval(notifier);
      await issuers.close();
      await events.close();
      await rawStore.close();
    },
  };
}
