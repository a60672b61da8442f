/**
 * `@countersign/sdk/verify`: what a resource server runs before honouring a Countersign
 * lease. Web APIs only (fetch, Web Crypto through jose); it never imports the agent client.
 *
 * Checks, in order: a compact JWS of typ `at+jwt` (RFC 9068 §4) signed by a key in the
 * issuer's JWKS (EdDSA only), our `iss`, this resource's `aud`, `exp`/`nbf`/`iat` with a
 * bounded skew, `authorization_details` naming exactly the action and resource being served,
 * a DPoP proof from the bound key when the lease carries `cnf.jkt` (RFC 9449 §7: method, URL,
 * `iat`, `ath`, single-use `jti` within this process), and, when configured, RFC 7662
 * introspection so a revoked lease (task completed, agent suspended) is refused at once.
 */
import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeProtectedHeader,
  EmbeddedJWK,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { accessTokenHash } from './dpop.js';

/** Stable reasons a lease is refused. */
export type LeaseErrorCode =
  | 'invalid_token'
  | 'token_expired'
  | 'wrong_audience'
  | 'insufficient_scope'
  | 'dpop_required'
  | 'invalid_dpop_proof'
  | 'dpop_replayed'
  | 'revoked'
  | 'introspection_unavailable'
  | 'keys_unavailable';

export class LeaseVerificationError extends Error {
  constructor(
    readonly code: LeaseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LeaseVerificationError';
  }

  /** The RFC 6750 §3 / RFC 9449 §7.1 challenge to send back with a 401 or 403. */
  get wwwAuthenticate(): string {
    const error =
      this.code === 'insufficient_scope'
        ? 'insufficient_scope'
        : this.code.startsWith('dpop') || this.code === 'invalid_dpop_proof'
          ? 'invalid_dpop_proof'
          : 'invalid_token';
    return `DPoP error="${error}", algs="ES256 EdDSA", Bearer error="${error}"`;
  }
}

export interface LeaseVerifierOptions {
  /** Countersign's issuer URL (its `iss`), e.g. https://countersign.acme.dev. */
  readonly issuer: string;
  /** This resource server's audience: the catalog entry's `audience`. */
  readonly audience: string;
  /** Defaults to `${issuer}/.well-known/jwks.json`. */
  readonly jwksUri?: string;
  /** Clock skew tolerated on time claims and DPoP `iat`, seconds (default 60, at most 120). */
  readonly clockSkewSeconds?: number;
  /** When set, every lease is also introspected (RFC 7662) to catch revocation at once. */
  readonly introspection?: {
    readonly clientId: string;
    readonly clientSecret: string;
    /** Defaults to `${issuer}/oauth/introspect`. */
    readonly endpoint?: string;
  };
  readonly fetch?: typeof fetch;
  /** For tests: the current time in epoch milliseconds. */
  readonly now?: () => number;
}

export interface LeaseCheck {
  /** The lease (the access token) as presented. */
  readonly token: string;
  /** The `DPoP` header presented with it, if any. */
  readonly dpop?: string | null;
  /** The request's method and full URL, as this resource server's clients address it. */
  readonly method: string;
  readonly url: string;
  /** What the request does, in Countersign's terms: both must be granted by the lease. */
  readonly action: string;
  readonly resource: string;
}

export interface VerifiedLease {
  readonly agentId: string;
  readonly leaseId: string;
  readonly taskId: string;
  readonly expiresAt: number;
  /** The bound DPoP key's thumbprint, or null for a bearer lease. */
  readonly jkt: string | null;
  readonly claims: JWTPayload;
}

const MAX_SEEN_PROOFS = 100_000;

function fail(code: LeaseErrorCode, message: string, cause?: unknown): never {
  throw new LeaseVerificationError(code, message, cause === undefined ? undefined : { cause });
}

function htuOf(url: string): string | null {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return null;
  }
}

export class LeaseVerifier {
  readonly #options: LeaseVerifierOptions;
  readonly #jwks: JWTVerifyGetKey;
  readonly #skew: number;
  readonly #seen = new Map<string, number>();

  constructor(options: LeaseVerifierOptions) {
    if (!options.issuer || !options.audience) throw new TypeError('issuer and audience are required');
    this.#options = { ...options, issuer: options.issuer.replace(/\/+$/, '') };
    this.#skew = Math.min(options.clockSkewSeconds ?? 60, 120);
    this.#jwks = createRemoteJWKSet(
      new URL(options.jwksUri ?? `${this.#options.issuer}/.well-known/jwks.json`),
      {
        cooldownDuration: 30_000,
        cacheMaxAge: 600_000,
        timeoutDuration: 5_000,
      },
    );
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }

  /** Reads `Authorization: DPoP|Bearer <lease>` and `DPoP` from a Web `Request`, then verifies. */
  verifyRequest(request: Request, what: { action: string; resource: string }): Promise<VerifiedLease> {
    const match = /^(DPoP|Bearer) ([A-Za-z0-9_.-]+)$/.exec(request.headers.get('authorization') ?? '');
    if (!match) fail('invalid_token', 'no lease presented');
    return this.verify({
      token: match[2]!,
      dpop: request.headers.get('dpop'),
      method: request.method,
      url: request.url,
      ...what,
    });
  }

  async verify(check: LeaseCheck): Promise<VerifiedLease> {
    const o = this.#options;
    let payload: JWTPayload;
    try {
      if (decodeProtectedHeader(check.token).typ !== 'at+jwt')
        fail('invalid_token', 'not a Countersign lease');
      ({ payload } = await jwtVerify(check.token, this.#jwks, {
        algorithms: ['EdDSA'],
        typ: 'at+jwt',
        issuer: o.issuer,
        requiredClaims: ['exp', 'jti', 'sub', 'aud'],
        clockTolerance: this.#skew,
        currentDate: new Date(this.#now()),
      }));
    } catch (error) {
      if (error instanceof LeaseVerificationError) throw error;
      if (error instanceof joseErrors.JWTExpired) fail('token_expired', 'the lease has expired', error);
      if (
        error instanceof joseErrors.JWKSTimeout ||
        (error instanceof joseErrors.JOSEError && error.code === 'ERR_JOSE_GENERIC') ||
        (error instanceof TypeError && !(error instanceof joseErrors.JOSEError))
      )
        fail('keys_unavailable', 'the issuer keys cannot be fetched', error);
      fail('invalid_token', 'the lease does not verify', error);
    }
    if (payload.aud !== o.audience) fail('wrong_audience', 'the lease is for another resource server');
    const details = payload.authorization_details;
    const granted =
      Array.isArray(details) &&
      details.some(
        (d: { type?: unknown; actions?: unknown; locations?: unknown }) =>
          d.type === 'countersign_access' &&
          Array.isArray(d.actions) &&
          d.actions.includes(check.action) &&
          Array.isArray(d.locations) &&
          d.locations.includes(check.resource),
      );
    if (!granted) fail('insufficient_scope', `the lease does not grant ${check.action} on ${check.resource}`);

    const cnf = payload.cnf as { jkt?: unknown } | undefined;
    const jkt = typeof cnf?.jkt === 'string' ? cnf.jkt : null;
    if (cnf !== undefined && jkt === null) fail('invalid_token', 'malformed cnf');
    if (jkt !== null) await this.#checkProof(check, jkt);

    if (o.introspection) await this.#introspect(check.token);
    return {
      agentId: String(payload.sub),
      leaseId: String(payload.jti),
      taskId: String(payload.task_id ?? ''),
      expiresAt: (payload.exp as number) * 1000,
      jkt,
      claims: payload,
    };
  }

  /** RFC 9449 §4.3, for a lease bound to `jkt`. */
  async #checkProof(check: LeaseCheck, jkt: string): Promise<void> {
    if (!check.dpop) fail('dpop_required', 'this lease is DPoP-bound: a proof from its key is required');
    const proof = check.dpop;
    let payload: JWTPayload;
    let header: { jwk?: unknown };
    try {
      header = decodeProtectedHeader(proof) as { jwk?: unknown };
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'PS256', 'RS256'],
        requiredClaims: ['jti', 'htm', 'htu', 'iat'],
        currentDate: new Date(this.#now()),
        clockTolerance: this.#skew,
      }));
    } catch (error) {
      fail('invalid_dpop_proof', 'the DPoP proof does not verify', error);
    }
    if ((await calculateJwkThumbprint(header.jwk as JWK, 'sha256')) !== jkt)
      fail('invalid_dpop_proof', 'the proof is not from the key the lease is bound to');
    if (payload.htm !== check.method) fail('invalid_dpop_proof', 'htm does not match the request method');
    const expected = htuOf(check.url);
    if (expected === null || typeof payload.htu !== 'string' || htuOf(payload.htu) !== expected)
      fail('invalid_dpop_proof', 'htu does not match the request URL');
    const now = Math.floor(this.#now() / 1000);
    const iat = payload.iat as number;
    if (iat > now + this.#skew || iat < now - this.#skew)
      fail('invalid_dpop_proof', 'the proof iat is outside the window');
    if (payload.ath !== (await accessTokenHash(check.token)))
      fail('invalid_dpop_proof', 'ath does not match the lease');
    // Single use within this process (RFC 9449 §11.1); several replicas should add a shared store.
    const key = `${jkt}\u0000${String(payload.jti)}`;
    const nowMs = this.#now();
    for (const [k, until] of this.#seen) {
      if (until > nowMs && this.#seen.size < MAX_SEEN_PROOFS) break;
      this.#seen.delete(k);
    }
    if ((this.#seen.get(key) ?? 0) > nowMs) fail('dpop_replayed', 'this DPoP proof was already used');
    this.#seen.set(key, (iat + 2 * this.#skew) * 1000);
  }

  async #introspect(token: string): Promise<void> {
    const i = this.#options.introspection!;
    const basic = btoa(`${encodeURIComponent(i.clientId)}:${encodeURIComponent(i.clientSecret)}`);
    let body: { active?: unknown };
    try {
      const res = await (this.#options.fetch ?? fetch)(
        i.endpoint ?? `${this.#options.issuer}/oauth/introspect`,
        {
          method: 'POST',
          headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token }).toString(),
          signal: AbortSignal.timeout(5_000),
        },
      );
      if (!res.ok) throw new Error(`introspection answered HTTP ${res.status}`);
      body = (await res.json()) as { active?: unknown };
    } catch (error) {
      // Fail closed: when revocation cannot be checked, the lease is not honoured.
      fail('introspection_unavailable', 'introspection failed', error);
    }
    if (body.active !== true)
      fail('revoked', 'the lease is no longer active (revoked, task completed or agent suspended)');
  }
}

/** Convenience: one verifier for one resource server. */
export function createLeaseVerifier(options: LeaseVerifierOptions): LeaseVerifier {
  return new LeaseVerifier(options);
}
