/**
 * Private-key JWT agent assertions (RFC 7523 shape): the agent signs a short-lived JWT with
 * its registered key; `iss` = `sub` = agent id, `aud` = our issuer, `exp` at most five
 * minutes ahead, unique `jti`. Validation follows RFC 8725: algorithms fixed by us, never by
 * the header (B4, B5); URL-bearing headers never consulted (B6); unknown `crit` refused by jose.
 */
import { type AgentRecord, type Clock, CountersignError, type Store } from '@countersign/core';
import { decodeJwt, decodeProtectedHeader, importJWK, errors as joseErrors, jwtVerify } from 'jose';
import type { TokenVerifier, VerifiedWorkload } from './authenticator.js';

/** RFC 8725 §3.1: "libraries MUST enable the caller to specify a supported set of algorithms". */
export const ASSERTION_ALGORITHMS = ['EdDSA'] as const;
/** Longest assertion lifetime we accept, seconds. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
/** Clock skew tolerated on exp/nbf/iat, seconds (THREATS.md G1: at most 60). */
export const CLOCK_SKEW_SECONDS = 60;
const MAX_TOKEN_LENGTH = 8192;
/** Bound on the in-memory replay filter. */
const MAX_RECENT_JTIS = 100_000;

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

export interface PrivateKeyJwtOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** Our issuer identifier: the only accepted audience. */
  readonly audience: string;
}

function invalid(message: string, cause?: unknown): never {
  throw new CountersignError('CS_TOKEN_INVALID', message, cause === undefined ? undefined : { cause });
}

/** The zero-infrastructure method: verifies private-key JWT assertions; one-time by `jti`. */
export class PrivateKeyJwtAuthenticator implements TokenVerifier {
  readonly #keys = new Map<string, VerifyKey>();
  /** Fast in-memory replay filter; the store's consumeTokenId is the authority. */
  readonly #recent = new Map<string, number>();

  constructor(private readonly options: PrivateKeyJwtOptions) {}

  async #key(agent: AgentRecord): Promise<VerifyKey> {
    if (agent.publicJwk === null || agent.jwkThumbprint === null)
      invalid('this agent has no registered key: it authenticates with its workload identity');
    let key = this.#keys.get(agent.jwkThumbprint);
    if (!key) {
      key = await importJWK({ ...agent.publicJwk, alg: undefined, use: undefined }, 'EdDSA');
      this.#keys.set(agent.jwkThumbprint, key);
    }
    return key;
  }

  #seen(agentId: string, jti: string, exp: number, now: number): boolean {
    const key = `${agentId}\u0000${jti}`;
    const until = this.#recent.get(key);
    if (until !== undefined && until > now) return true;
    // Insertion order is close to expiry order (lifetimes are bounded): drop expired entries
    // from the front, O(1) amortised, and cap the size. The store's consumeTokenId stays the
    // authority, so forgetting early only costs a database lookup, never a replay.
    for (const [k, t] of this.#recent) {
      if (t > now && this.#recent.size < MAX_RECENT_JTIS) break;
      this.#recent.delete(k);
    }
    this.#recent.set(key, exp);
    return false;
  }

  async verify(token: string): Promise<VerifiedWorkload> {
    if (token.length > MAX_TOKEN_LENGTH) invalid('token too long');
    // One assertion, one spelling: refuse non-canonical base64url (padding, stray trailing
    // bits) so nothing keyed on the token text can be sidestepped by re-encoding it.
    const segments = token.split('.');
    if (segments.length !== 3 || segments.some((s) => !/^[A-Za-z0-9_-]+$/.test(s)))
      invalid('not a compact JWS');
    const signature = segments[2]!;
    if (Buffer.from(signature, 'base64url').toString('base64url') !== signature)
      invalid('non-canonical signature encoding');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch (error) {
      invalid('malformed token', error);
    }
    if (!(ASSERTION_ALGORITHMS as readonly string[]).includes(String(header.alg)))
      invalid(`algorithm ${String(header.alg)} is not allowed`);
    // B6: a token of another kind (our own access tokens, reviewer tokens) is never an assertion.
    if (header.typ !== undefined && header.typ !== 'JWT')
      invalid(`token type ${String(header.typ)} is not an agent assertion`);
    if (typeof claims.iss !== 'string' || claims.iss !== claims.sub)
      invalid('iss and sub must both name the agent');
    if (typeof claims.jti !== 'string' || claims.jti.length === 0 || claims.jti.length > 128)
      invalid('jti is required');
    if (typeof claims.exp !== 'number') invalid('exp is required');

    const agent = await this.options.store.read((tx) => tx.getAgent(claims.iss as string));
    if (!agent) throw new CountersignError('CS_AGENT_UNKNOWN', 'unknown agent');

    const nowMs = this.options.clock.now();
    const now = Math.floor(nowMs / 1000);
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(token, await this.#key(agent), {
        algorithms: [...ASSERTION_ALGORITHMS],
        audience: this.options.audience,
        issuer: agent.id,
        subject: agent.id,
        requiredClaims: ['exp', 'jti'],
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(nowMs),
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired)
        throw new CountersignError('CS_TOKEN_EXPIRED', 'token expired', { cause: error });
      invalid(
        error instanceof joseErrors.JOSEError ? `token rejected (${error.code})` : 'token rejected',
        error,
      );
    }
    // RFC 8725 §3.10 spirit: one audience, ours. jose accepts us among several; we do not.
    if (payload.aud !== this.options.audience) invalid('the audience must be exactly this server');
    const exp = payload.exp!;
    if (typeof payload.iat === 'number' && (payload.iat > now + CLOCK_SKEW_SECONDS || exp <= payload.iat)) {
      invalid('iat is in the future or not before exp');
    }
    if (exp - now > MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS) {
      invalid(`exp may be at most ${MAX_ASSERTION_LIFETIME_SECONDS}s ahead`);
    }
    if (typeof payload.iat === 'number' && exp - payload.iat > MAX_ASSERTION_LIFETIME_SECONDS) {
      invalid(`assertion lifetime may be at most ${MAX_ASSERTION_LIFETIME_SECONDS}s`);
    }
    // Keep the jti until it could no longer verify: exp plus the skew we tolerate.
    const expiresAt = (exp + CLOCK_SKEW_SECONDS) * 1000;
    if (this.#seen(agent.id, payload.jti!, expiresAt, nowMs)) {
      throw new CountersignError('CS_TOKEN_REPLAYED', 'this assertion was already used (jti replay)');
    }
    return {
      agent,
      method: 'private_key_jwt',
      oneTimeIds: [{ namespace: `jwt-bearer:${agent.id}`, id: payload.jti!, expiresAt }],
      boundJkt: null,
      requireDpop: false,
    };
  }
}
