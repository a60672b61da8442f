import { Hono } from 'hono';
import type { ServerDeps } from '../app.js';

/** The driver's own words under our wrapper (never a connection string: drivers do not echo it). */
function rootMessage(error: unknown): string {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

export function wellKnownRoutes(deps: ServerDeps): Hono {
  const app = new Hono();
  const { config } = deps;

  app.get('/.well-known/jwks.json', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json({ keys: [deps.signingKey.publicJwk] });
  });

  // RFC 8414 authorization server metadata. `issuer` is the audience agents must use.
  app.get('/.well-known/oauth-authorization-server', (c) =>
    c.json({
      issuer: config.issuer,
      jwks_uri: `${config.issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${config.issuer}/oauth/introspect`,
      revocation_endpoint: `${config.issuer}/oauth/revoke`,
      // RFC 8414 §2 requires this member; Countersign has no authorization endpoint.
      response_types_supported: [],
      introspection_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic'],
      revocation_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic'],
      introspection_endpoint_auth_signing_alg_values_supported: ['EdDSA'],
      // RFC 9449 §5.1.
      dpop_signing_alg_values_supported: ['EdDSA', 'ES256', 'ES384', 'ES512', 'PS256', 'RS256'],
      authorization_details_types_supported: ['countersign_access'],
      access_request_endpoint: `${config.issuer}/v1/access-requests`,
    }),
  );

  // Liveness: the process answers. Also the benchmark's baseline (no store, no crypto).
  app.get('/healthz/live', (c) => c.json({ status: 'ok' }));

  // Readiness: can this instance decide safely right now? Fail closed says no when in doubt.
  app.get('/healthz', async (c) => {
    const checks: Record<string, string> = {};
    const unready = deps.unready();
    const refused = deps.policyReloadRefused();
    checks.policy =
      unready ??
      `ok (${deps.ctx.policy().version})${refused ? `; newer policy files refused, this set stays in force: ${refused}` : ''}`;
    try {
      await deps.ctx.store.read((tx) => tx.getAgent('healthz-probe'));
      if (deps.ctx.store.writeHealth()) {
        // Writes failed last time: try a harmless write (it deletes nothing), so an instance
        // whose database came back reports ready again without waiting for traffic.
        await deps.ctx.store.pruneTokenIds(0).catch(() => undefined);
      }
      const write = deps.ctx.store.writeHealth();
      checks.store = write
        ? `writes failing since ${new Date(write.at).toISOString()}: ${write.message}`
        : 'ok';
    } catch (error) {
      checks.store = `unavailable: ${rootMessage(error)}`;
    }
    // Informational: a lost notification connection only slows cross-instance wake-ups.
    checks.events = deps.events.status().mode;
    const ok = unready === null && checks.store === 'ok';
    // A trusted issuer whose keys cannot be fetched refuses its own agents' calls (503,
    // CS_IDENTITY_UNAVAILABLE) but not everyone else's: the instance stays ready, degraded,
    // and says which issuer and why.
    let degraded = false;
    for (const h of deps.identityHealth()) {
      checks[`identity:${h.issuer}`] = h.status === 'ok' ? `ok (${h.detail})` : `${h.status}: ${h.detail}`;
      if (h.status === 'unavailable') degraded = true;
    }
    const status = ok ? (degraded ? 'degraded' : 'ok') : 'unready';
    return c.json({ status, dev_mode: config.dev, store: deps.store.kind, checks }, ok ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    c.header('Content-Type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  });

  return app;
}
