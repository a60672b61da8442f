/**
 * The composition root: `createServer(config)` is the one place that wires real adapters
 * to the domain's ports. Routes stay thin: validate, call a use case, map errors.
 */

import {
  type Clock,
  type CountersignError,
  type DomainContext,
  expireReviews,
  type Issuer,
  type PolicyEngine,
  ResourceCatalog,
  recordPolicyLoad,
  type Store,
  systemClock,
  taggedDigest,
} from '@countersign/core';
import { policyEngineFromDirectory } from '@countersign/policy';
import { Hono } from 'hono';
import pino from 'pino';
import { loadCatalogFile, type ServerConfig } from './config.js';
import { toWireError } from './errors.js';
import type { AgentAuthenticator } from './identity/authenticator.js';
import { PrivateKeyJwtAuthenticator } from './identity/private-key-jwt.js';
import { newId } from './ids.js';
import { InstanceEvents } from './instance-events.js';
import { accessTokenIssuer } from './issuers/access-token.js';
import { receiptSigner } from './issuers/receipt.js';
import { loadSigningKey, type SigningKey } from './keys.js';
import { createMetrics, type Metrics, registerStoreMetrics, timed, timedSync } from './metrics.js';
import { createDispatcher } from './notifications.js';
import { agentRoutes } from './routes/agent.js';
import { consoleRoutes } from './routes/console.js';
import { consoleStaticRoutes } from './routes/console-static.js';
import { oauthRoutes } from './routes/oauth.js';
import { wellKnownRoutes } from './routes/well-known.js';
import { type OpenedStore, openStore } from './store.js';
import { RequestWaiters } from './waiters.js';

export interface ServerDeps {
  readonly config: ServerConfig;
  readonly ctx: DomainContext;
  readonly authenticator: AgentAuthenticator;
  readonly signingKey: SigningKey;
  readonly metrics: Metrics;
  readonly waiters: RequestWaiters;
  /** Request changes across instances (LISTEN/NOTIFY and the audit-chain poll). */
  readonly events: InstanceEvents;
  /** Which store this instance runs on (no password). */
  readonly store: Pick<OpenedStore, 'kind' | 'description'>;
  readonly log: pino.Logger;
  /** Why the server cannot decide right now, or null when ready. */
  readonly unready: () => string | null;
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
  close(): Promise<void>;
}

export interface ServerOverrides {
  readonly clock?: Clock;
  readonly store?: Store;
  readonly logLevel?: pino.Level | 'silent';
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

function instrumentIssuer(issuer: Issuer, metrics: Metrics): Issuer {
  return { kind: issuer.kind, issue: (grant) => timed(metrics, 'signing', () => issuer.issue(grant)) };
}

function instrumentStore(store: Store, metrics: Metrics): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'transaction') {
        return <T>(work: Parameters<Store['transaction']>[0]) =>
          timed(metrics, 'commit', () => target.transaction(work) as Promise<T>);
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
  const clock = overrides.clock ?? systemClock;
  const metrics = createMetrics();
  const ids = { next: newId };
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
    : await openStore(config, ids);
  for (const warning of opened.warnings) log.warn(warning);
  const rawStore = opened.store;
  const store = instrumentStore(rawStore, metrics);

  // Fail closed (J1): a policy set that does not load leaves the server up but unready,
  // and every decision a deny with CS_POLICY_ERROR.
  let policyError: string | null = null;
  let engine: PolicyEngine;
  let policyCount: number | null = null;
  try {
    const cedar = policyEngineFromDirectory(config.policyDir, config.schemaFile);
    policyCount = cedar.policyCount;
    engine = instrumentPolicy(cedar, metrics);
  } catch (error) {
    policyError = (error as Error).message;
    log.error({ err: policyError }, 'policy set failed to load: every request will be denied');
    engine = {
      version: 'unloaded',
      evaluate: () => ({ kind: 'error', message: 'no valid policy set is loaded', policyIds: [] }),
    };
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
    catalog: () => catalog,
    issuer: instrumentIssuer(accessTokenIssuer({ issuer: config.issuer, key: signingKey }), metrics),
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
    })}`,
    actionClasses: config.actionClasses,
  };
  const authenticator = new PrivateKeyJwtAuthenticator({ store: rawStore, clock, audience: config.issuer });
  const deps: ServerDeps = {
    config,
    ctx,
    authenticator,
    signingKey,
    metrics,
    waiters,
    events,
    store: { kind: opened.kind, description: opened.description },
    log,
    unready: () => (policyError ? `policy set failed to load: ${policyError}` : null),
  };

  const app = new Hono();
  app.use('*', async (c, next) => {
    await next();
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
    c.header('X-Content-Type-Options', 'nosniff');
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
    return c.json(wire.body, wire.status);
  });
  app.notFound((c) => c.json({ error: { code: 'CS_NOT_FOUND', message: 'no such endpoint' } }, 404));
  app.route('/', wellKnownRoutes(deps));
  app.route('/', agentRoutes(deps));
  app.route('/', oauthRoutes(deps));
  app.route('/', consoleRoutes(deps));
  app.route('/', consoleStaticRoutes());

  const dispatcher = createDispatcher({
    store: rawStore,
    clock,
    issuer: config.issuer,
    webhooks: config.webhooks,
    log,
  });
  let reaper: NodeJS.Timeout | null = null;
  let notifier: NodeJS.Timeout | null = null;
  return {
    app,
    deps,
    deliverNotifications: () => dispatcher.deliverDue(),
    async recordStart() {
      await recordPolicyLoad({ ctx, input: { version: engine.version, policyCount, error: policyError } });
    },
    startBackground() {
      if (reaper) return;
      events
        .start()
        .catch((error) =>
          log.error({ err: (error as Error).message }, 'request change feed failed to start'),
        );
      // Every instance runs the reaper and the webhook loop: each item is taken by a
      // compare-and-set (a review expires once; a notification is claimed once), so several
      // instances do each item once between them.
      reaper = setInterval(() => {
        expireReviews({ ctx }).catch((error) =>
          log.error({ err: (error as Error).message }, 'review reaper failed'),
        );
        rawStore
          .pruneTokenIds(clock.now())
          .catch((error) => log.error({ err: (error as Error).message }, 'token pruning failed'));
      }, config.reaperIntervalSeconds * 1000);
      reaper.unref();
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
      if (reaper) clearInterval(reaper);
      if (notifier) clearInterval(notifier);
      await events.close();
      await rawStore.close();
    },
  };
}
