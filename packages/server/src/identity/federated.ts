/**
 * Federated workload identity: tokens from a configured trusted issuer (an OIDC provider,
 * the Kubernetes API server, GitHub Actions, a SPIFFE trust domain), mapped to a registered
 * agent by the (issuer, subject) binding the operator recorded for it.
 *
 * RFC 8725 throughout: the algorithm allow-list is the issuer's configuration, never the
 * header (B4, B5); keys come only from the configured JWKS, so `jku`, `x5u`, `x5c` and an
 * embedded `jwk` are never consulted and `kid` is only a lookup key in that set (B6); jose
 * refuses unknown `crit`; `typ` is checked per issuer kind so our own tokens (lease
 * `at+jwt` from our issuer, receipts, DPoP proofs) never pass as workload tokens (B6);
 * `iss`, single `aud`, `exp`, `nbf`, `iat` with a bounded skew (B2, B3, G1).
 *
 * Keys: jose's remote JWKS cache with explicit cooldown, maximum age and timeout (B7). A
 * token with an unknown `kid` triggers at most one refetch per cooldown; when the keys
 * cannot be fetched once the cache is older than its maximum age, calls fail closed with
 * CS_IDENTITY_UNAVAILABLE (503) and `/healthz` names the issuer and the reason. Key-cache
 * timing runs on the wall clock, as jose's cache does; token time claims use the Clock port.
 */
import { readFileSync, statSync } from 'node:fs';
import { type Clock, CountersignError, type Store } from '@countersign/core';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { AuthMethod, TokenVerifier, VerifiedWorkload } from './authenticator.js';

/** Asymmetric JWS algorithms an issuer may be configured with (RFC 8725 §3.1, §3.2). */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export type IssuerKind = 'oidc' | 'kubernetes' | 'github' | 'spiffe';

export type KeySource =
  | { readonly type: 'jwks_uri'; readonly url: string }
  | { readonly type: 'discovery' }
  | { readonly type: 'jwks'; readonly jwks: JSONWebKeySet }
  | { readonly type: 'spiffe_bundle'; readonly file: string };

export interface TrustedIssuerConfig {
  readonly issuer: string;
  readonly kind: IssuerKind;
  readonly keys: KeySource;
  readonly audience: string;
  readonly algorithms: readonly AsymmetricAlgorithm[];
  /** Accepted `typ` header values (normalized, lowercase); `null` in the list means "absent". */
  readonly tokenTypes: ReadonlyArray<string | null>;
  /** `sub` must start with this (B3: subjects pinned per issuer). */
  readonly subjectPrefix: string | null;
  /** Top-level string claims that must equal one of the listed values. */
  readonly claims: Readonly<Record<string, readonly string[]>>;
  /** Kubernetes: allowed namespaces (from `sub` and `kubernetes.io.namespace`). */
  readonly namespaces: readonly string[] | null;
  /** SPIFFE: the trust domain every `sub` must belong to. */
  readonly trustDomain: string | null;
  readonly requireDpop: boolean;
  readonly clockSkewSeconds: number;
  readonly maxTokenLifetimeSeconds: number;
  readonly cacheMaxAgeSeconds: number;
  readonly cooldownSeconds: number;
  readonly timeoutSeconds: number;
}

/** The default `typ` values each kind's tokens carry. */
export function defaultTokenTypes(kind: IssuerKind): Array<string | null> {
  switch (kind) {
    // RFC 9068 access tokens (at+jwt) and OIDC ID tokens (JWT or no typ).
    case 'oidc':
      return ['at+jwt', 'jwt', null];
    // Projected service-account tokens carry no typ.
    case 'kubernetes':
      return ['jwt', null];
    // GitHub's OIDC tokens say typ JWT.
    case 'github':
      return ['jwt'];
    // JWT-SVID §3: typ, when present, is JWT or JOSE.
    case 'spiffe':
      return ['jwt', 'jose', null];
    default: {
      const never: never = kind;
      throw new TypeError(`unknown issuer kind ${String(never)}`);
    }
  }
}

/** RFC 8725 §3.11 / RFC 7515 §4.1.9: media types compare case-insensitively, `application/` optional. */
export function normalizeTyp(typ: unknown): string | null | undefined {
  if (typ === undefined) return null;
  if (typeof typ !== 'string') return undefined;
  const t = typ.toLowerCase();
  return t.startsWith('application/') ? t.slice('application/'.length) : t;
}

const MAX_TOKEN_LENGTH = 16 * 1024;
const K8S_SUBJECT =
  /^system:serviceaccount:([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?):([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)$/;

export interface IssuerHealth {
  readonly issuer: string;
  readonly status: 'ok' | 'unavailable' | 'unknown';
  readonly detail: string;
}

function invalid(message: string, cause?: unknown): never {
  throw new CountersignError('CS_TOKEN_INVALID', message, cause === undefined ? undefined : { cause });
}

/** Marks a key-fetch failure so it is told apart from a bad token. */
class KeysUnavailable extends Error {}

type RemoteSet = ReturnType<typeof createRemoteJWKSet>;

export interface FederatedVerifierOptions {
  readonly store: Store;
  readonly clock: Clock;
}

export class FederatedVerifier implements TokenVerifier {
  readonly issuer: string;
  readonly #config: TrustedIssuerConfig;
  readonly #options: FederatedVerifierOptions;
  #remote: RemoteSet | null = null;
  #local: JWTVerifyGetKey | null = null;
  #bundleMtime = -1;
  #discovery: Promise<RemoteSet> | null = null;
  #lastFailure: { at: number; message: string } | null = null;
  #lastSuccess: number | null = null;

  constructor(config: TrustedIssuerConfig, options: FederatedVerifierOptions) {
    this.issuer = config.issuer;
    this.#config = config;
    this.#options = options;
    if (config.keys.type === 'jwks_uri') this.#remote = this.#remoteSet(config.keys.url);
    if (config.keys.type === 'jwks') this.#local = createLocalJWKSet(config.keys.jwks);
  }

  #remoteSet(url: string): RemoteSet {
    const c = this.#config;
    return createRemoteJWKSet(new URL(url), {
      cooldownDuration: c.cooldownSeconds * 1000,
      cacheMaxAge: c.cacheMaxAgeSeconds * 1000,
      timeoutDuration: c.timeoutSeconds * 1000,
    });
  }

  /** OpenID Connect Discovery 1.0 §4: the metadata's `issuer` must be exactly ours. */
  async #discover(): Promise<RemoteSet> {
    const url = `${this.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const res = await fetch(url, {
      redirect: 'error',
      signal: AbortSignal.timeout(this.#config.timeoutSeconds * 1000),
      headers: { accept: 'application/json' },
    });
    if (!res.ok) throw new Error(`discovery answered HTTP ${res.status}`);
    const meta = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (meta.issuer !== this.issuer) throw new Error('discovery metadata names another issuer');
    if (typeof meta.jwks_uri !== 'string' || !/^https?:\/\//.test(meta.jwks_uri))
      throw new Error('discovery metadata has no usable jwks_uri');
    return this.#remoteSet(meta.jwks_uri);
  }

  /** A SPIFFE bundle: a JWKS whose `jwt-svid` keys verify JWT-SVIDs; re-read when the file changes. */
  #bundleKeys(): JWTVerifyGetKey {
    const file = (this.#config.keys as { file: string }).file;
    const mtime = statSync(file).mtimeMs;
    if (!this.#local || mtime !== this.#bundleMtime) {
      const bundle = JSON.parse(readFileSync(file, 'utf8')) as { keys?: Array<Record<string, unknown>> };
      if (!Array.isArray(bundle.keys)) throw new Error('the SPIFFE bundle has no keys');
      // SPIFFE Trust Domain and Bundle §4.2.2: `use` is `jwt-svid` for JWT-SVID keys. jose
      // reads `use` as RFC 7517's sig/enc, so the selected keys are passed on without it.
      const keys = bundle.keys
        .filter((k) => k.use === 'jwt-svid')
        .map(({ use: _use, ...k }) => k) as unknown as JSONWebKeySet['keys'];
      this.#local = createLocalJWKSet({ keys });
      this.#bundleMtime = mtime;
    }
    return this.#local;
  }

  #failed(error: unknown): never {
    const message = error instanceof Error ? error.message || error.name : String(error);
    this.#lastFailure = { at: Date.now(), message };
    throw new KeysUnavailable(message, { cause: error });
  }

  /** The key lookup: only this issuer's configured keys; the header's `kid`/`alg` select among them. */
  readonly #getKey: JWTVerifyGetKey = async (header, token) => {
    const source = this.#config.keys;
    if (source.type === 'jwks') return this.#local!(header, token);
    if (source.type === 'spiffe_bundle') {
      let keys: JWTVerifyGetKey;
      try {
        keys = this.#bundleKeys();
      } catch (error) {
        this.#failed(error);
      }
      this.#lastSuccess = Date.now();
      return keys(header, token);
    }
    if (!this.#remote) {
      try {
        this.#discovery ??= this.#discover();
        this.#remote = await this.#discovery;
      } catch (error) {
        this.#discovery = null;
        this.#failed(error);
      }
    }
    const remote = this.#remote;
    // Past the cache age with a failure inside the cooldown: refuse at once instead of
    // letting every call wait out a fetch timeout against a dead endpoint.
    if (
      !remote.fresh &&
      this.#lastFailure &&
      Date.now() - this.#lastFailure.at < this.#config.cooldownSeconds * 1000
    ) {
      throw new KeysUnavailable(this.#lastFailure.message);
    }
    try {
      const key = await remote(header, token);
      this.#lastSuccess = Date.now();
      this.#lastFailure = null;
      return key;
    } catch (error) {
      // An unknown kid against fresh keys is the token's fault, not an outage.
      if (
        error instanceof joseErrors.JWKSNoMatchingKey ||
        error instanceof joseErrors.JWKSMultipleMatchingKeys
      )
        throw error;
      this.#failed(error);
    }
  };

  /** Fetches the keys now (at start), so readiness knows before the first call. */
  async prefetch(): Promise<void> {
    try {
      if (this.#config.keys.type === 'spiffe_bundle') this.#bundleKeys();
      else if (this.#config.keys.type !== 'jwks') {
        if (!this.#remote) {
          this.#discovery ??= this.#discover();
          this.#remote = await this.#discovery;
        }
        await this.#remote.reload();
      }
      this.#lastSuccess = Date.now();
      this.#lastFailure = null;
    } catch (error) {
      this.#discovery = null;
      this.#lastFailure = {
        at: Date.now(),
        message: error instanceof Error ? error.message || error.name : String(error),
      };
    }
  }

  health(): IssuerHealth {
    const source = this.#config.keys.type;
    if (source === 'jwks') return { issuer: this.issuer, status: 'ok', detail: 'inline keys' };
    const fresh = this.#remote?.fresh ?? source === 'spiffe_bundle';
    if (this.#lastFailure && !fresh) {
      return {
        issuer: this.issuer,
        status: 'unavailable',
        detail: `keys unavailable since ${new Date(this.#lastFailure.at).toISOString()}: ${this.#lastFailure.message}`,
      };
    }
    if (this.#lastSuccess === null)
      return { issuer: this.issuer, status: 'unknown', detail: 'keys not fetched yet' };
    return {
      issuer: this.issuer,
      status: 'ok',
      detail: `keys fetched ${new Date(this.#lastSuccess).toISOString()}`,
    };
  }

  async verify(token: string): Promise<VerifiedWorkload> {
    const c = this.#config;
    if (token.length > MAX_TOKEN_LENGTH) invalid('token too long');
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) invalid('not a compact JWS');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch (error) {
      invalid('malformed token', error);
    }
    // B4, B5: the algorithm comes from our configuration; checked before any key lookup.
    if (!(c.algorithms as readonly string[]).includes(String(header.alg)))
      invalid(`algorithm ${String(header.alg)} is not allowed for ${c.issuer}`);
    // B6: explicit typing, one set of types per kind (RFC 8725 §3.11).
    const typ = normalizeTyp(header.typ);
    if (typ === undefined || !c.tokenTypes.includes(typ))
      invalid(`token type ${String(header.typ)} is not accepted from ${c.issuer}`);

    const nowMs = this.#options.clock.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#getKey, {
        algorithms: [...c.algorithms],
        issuer: c.issuer,
        audience: c.audience,
        requiredClaims: ['exp', 'sub', 'iss'],
        clockTolerance: c.clockSkewSeconds,
        currentDate: new Date(nowMs),
      }));
    } catch (error) {
      if (error instanceof KeysUnavailable) {
        throw new CountersignError(
          'CS_IDENTITY_UNAVAILABLE',
          `the keys of ${c.issuer} cannot be fetched; refusing its tokens until they can`,
          { cause: error },
        );
      }
      if (error instanceof joseErrors.JWTExpired)
        throw new CountersignError('CS_TOKEN_EXPIRED', 'token expired', { cause: error });
      invalid(
        error instanceof joseErrors.JOSEError ? `token rejected (${error.code})` : 'token rejected',
        error,
      );
    }
    // B3: one audience, ours (a token minted for several services is replayable at each).
    const aud = payload.aud;
    if (!(aud === c.audience || (Array.isArray(aud) && aud.length === 1 && aud[0] === c.audience)))
      invalid('the token must name exactly this server as its audience');
    const now = Math.floor(nowMs / 1000);
    const exp = payload.exp!;
    if (typeof payload.iat === 'number') {
      if (payload.iat > now + c.clockSkewSeconds) invalid('iat is in the future');
      if (exp <= payload.iat) invalid('exp is not after iat');
    }
    const issuedAt = typeof payload.iat === 'number' ? payload.iat : now;
    if (exp - issuedAt > c.maxTokenLifetimeSeconds)
      invalid(`token lifetime exceeds ${c.maxTokenLifetimeSeconds}s for ${c.issuer}`);
    const sub = payload.sub!;
    if (sub.length === 0 || sub.length > 512) invalid('bad sub');
    if (c.subjectPrefix !== null && !sub.startsWith(c.subjectPrefix))
      invalid('the subject is outside the path pinned for this issuer');
    this.#checkKind(payload, sub);
    for (const [name, allowed] of Object.entries(c.claims)) {
      const value = payload[name];
      if (typeof value !== 'string' || !allowed.includes(value))
        invalid(`claim ${name} does not match the rule for ${c.issuer}`);
    }
    const cnf = payload.cnf as { jkt?: unknown } | undefined;
    if (cnf !== undefined && (cnf === null || typeof cnf !== 'object' || typeof cnf.jkt !== 'string'))
      invalid('a cnf claim must carry a jkt');

    const agent = await this.#options.store.read((tx) => tx.getAgentByWorkloadIdentity(c.issuer, sub));
    if (!agent)
      throw new CountersignError('CS_IDENTITY_UNBOUND', 'this workload identity is not bound to any agent');
    return {
      agent,
      method: c.kind satisfies AuthMethod,
      // Workload tokens are reused for their lifetime by design; a DPoP proof, if any, is one-time.
      oneTimeIds: [],
      boundJkt: cnf ? (cnf.jkt as string) : null,
      requireDpop: c.requireDpop,
    };
  }

  #checkKind(payload: JWTPayload, sub: string): void {
    const c = this.#config;
    switch (c.kind) {
      case 'oidc':
        return;
      case 'kubernetes': {
        const m = K8S_SUBJECT.exec(sub);
        if (!m) invalid('a Kubernetes token subject is system:serviceaccount:<namespace>:<name>');
        const claimed = (payload['kubernetes.io'] as { namespace?: unknown } | undefined)?.namespace;
        if (claimed !== undefined && claimed !== m[1]) invalid('kubernetes.io.namespace disagrees with sub');
        if (c.namespaces && !c.namespaces.includes(m[1]!)) invalid(`namespace ${m[1]} is not allowed`);
        return;
      }
      case 'github':
        if (!sub.startsWith('repo:') || typeof payload.repository !== 'string')
          invalid('a GitHub Actions token has a repo: subject and a repository claim');
        return;
      case 'spiffe': {
        // SPIFFE ID: spiffe://<trust domain>/<path>, in this issuer's trust domain only.
        const prefix = `spiffe://${c.trustDomain}/`;
        if (!sub.startsWith(prefix) || sub.length === prefix.length || /[?#%]/.test(sub))
          invalid('the SPIFFE ID is not in the configured trust domain');
        return;
      }
      default: {
        const never: never = c.kind;
        throw new TypeError(`unknown issuer kind ${String(never)}`);
      }
    }
  }
}
