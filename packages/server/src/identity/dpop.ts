/**
 * DPoP proof verification (RFC 9449 §4.3), one small exported function for every place a
 * proof is checked: agent calls, introspection, the credential-injecting proxy.
 *
 * The proof's embedded `jwk` header is the verification key BY DESIGN here (RFC 9449 §4.2:
 * "jwk: ... the public key chosen by the client"), the only place in Countersign where a
 * token's header chooses its key; what binds it is the thumbprint (`jkt`) compared with the
 * lease's `cnf.jkt`, or recorded for the lease about to be issued. Replay protection is the
 * caller's: consume `oneTimeId` in the unit of work of the call's effect (store
 * `consumeTokenId`), so a proof is used once across instances and restarts.
 */
import { CountersignError, type OneTimeId } from '@countersign/core';
import {
  base64url,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  type JWK,
  errors as joseErrors,
  jwtVerify,
} from 'jose';

/** RFC 9449 §4.2: "typ: with value dpop+jwt". */
export const DPOP_TYP = 'dpop+jwt';
/** Asymmetric only (RFC 9449 §4.2: "MUST NOT be none or an identifier for a symmetric algorithm"). */
export const DPOP_ALGORITHMS = [
  'EdDSA',
  'Ed25519',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
] as const;
/** How old a proof's `iat` may be, seconds (RFC 9449 §11.1: "a relatively brief period"). */
export const DPOP_MAX_AGE_SECONDS = 60;
/** How far ahead of our clock a proof's `iat` may be, seconds (THREATS.md G1: at most 60). */
export const DPOP_CLOCK_SKEW_SECONDS = 60;
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

export interface DpopProofCheck {
  /** The `DPoP` header's value. */
  readonly proof: string;
  /** The HTTP method of the call. */
  readonly method: string;
  /**
   * The URL the call was made to, built from the server's configured external base URL and
   * the request path: never from Host or X-Forwarded-* headers (THREATS.md F4).
   */
  readonly url: string;
  /** The access token presented with the proof; its hash must be the proof's `ath`. */
  readonly accessToken: string | null;
  /** Epoch milliseconds. */
  readonly now: number;
  /** When the token is sender-constrained (`cnf.jkt`), the proof must come from that key. */
  readonly expectedJkt?: string | null;
  readonly maxAgeSeconds?: number;
  readonly clockSkewSeconds?: number;
}

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key: what `cnf.jkt` names. */
  readonly jkt: string;
  readonly jti: string;
  readonly iat: number;
  /** Consume this in the call's unit of work: a proof is single use (RFC 9449 §11.1). */
  readonly oneTimeId: OneTimeId;
}

function invalid(message: string, cause?: unknown): never {
  throw new CountersignError('CS_DPOP_INVALID', message, cause === undefined ? undefined : { cause });
}

/**
 * RFC 9449 §4.3 check 9: "the htu claim matches the HTTP URI value for the HTTP request in
 * which the JWT was received, ignoring any query and fragment parts", compared after
 * syntax-based normalization (RFC 3986 §6.2.2, §6.2.3: scheme and host case, default port,
 * dot segments), which the WHATWG URL parser performs.
 */
export function normalizeHtu(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username || url.password) return null;
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** RFC 9449 §4.2 `ath`: base64url of the SHA-256 of the ASCII access token. */
export async function accessTokenHash(token: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token));
  return base64url.encode(new Uint8Array(digest));
}

/** Verifies one DPoP proof; throws CS_DPOP_INVALID with the reason. */
export async function verifyDpopProof(check: DpopProofCheck): Promise<VerifiedDpopProof> {
  const maxAge = check.maxAgeSeconds ?? DPOP_MAX_AGE_SECONDS;
  const skew = check.clockSkewSeconds ?? DPOP_CLOCK_SKEW_SECONDS;
  const { proof } = check;
  // RFC 9449 §4.3 checks 1-2: exactly one well-formed JWT (a repeated header arrives joined
  // with ", " and fails this shape check).
  if (proof.length > MAX_PROOF_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(proof))
    invalid('the DPoP proof is not one compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch (error) {
    invalid('malformed DPoP proof', error);
  }
  // Checks 4-6, before any key is imported: our typ, an asymmetric algorithm we allow.
  if (header.typ !== DPOP_TYP) invalid(`a DPoP proof must have typ ${DPOP_TYP}`);
  if (!(DPOP_ALGORITHMS as readonly string[]).includes(String(header.alg)))
    invalid(`DPoP algorithm ${String(header.alg)} is not allowed`);
  if (header.jwk === null || typeof header.jwk !== 'object') invalid('a DPoP proof must carry its jwk');
  // Check 7: "the jwk header parameter does not contain a private key".
  const jwk = header.jwk as JWK;
  if ('d' in jwk || 'p' in jwk || 'q' in jwk || 'k' in jwk) invalid('the DPoP jwk must be a public key');

  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      algorithms: [...DPOP_ALGORITHMS],
      typ: DPOP_TYP,
      requiredClaims: ['jti', 'htm', 'htu', 'iat'],
      currentDate: new Date(check.now),
      clockTolerance: skew,
    }));
  } catch (error) {
    invalid(
      error instanceof joseErrors.JOSEError ? `DPoP proof rejected (${error.code})` : 'DPoP proof rejected',
      error,
    );
  }
  const { jti, htm, htu, iat } = payload as { jti: unknown; htm: unknown; htu: unknown; iat: unknown };
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) invalid('bad DPoP jti');
  // Check 8: "the htm claim matches the HTTP method of the current request".
  if (htm !== check.method) invalid('DPoP htm does not match the request method');
  // Check 9, against our configured external URL only (F4).
  const expected = normalizeHtu(check.url);
  if (expected === null) throw new TypeError(`not an absolute http(s) URL: ${check.url}`);
  if (typeof htu !== 'string' || normalizeHtu(htu) !== expected)
    invalid('DPoP htu does not match the request URL');
  // Check 11: "the creation time of the JWT ... is within an acceptable window".
  const now = Math.floor(check.now / 1000);
  if (typeof iat !== 'number' || !Number.isFinite(iat)) invalid('bad DPoP iat');
  if (iat > now + skew) invalid('DPoP proof iat is in the future');
  if (iat < now - maxAge) invalid('DPoP proof is too old (iat)');
  // Check 12: "the value of the ath claim equals the hash of that access token".
  if (check.accessToken !== null) {
    if (typeof payload.ath !== 'string') invalid('DPoP proof lacks ath for the presented token');
    if (payload.ath !== (await accessTokenHash(check.accessToken)))
      invalid('DPoP ath does not match the presented token');
  }
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  // Check 12 (cont.): "the public key ... matches the public key to which the access token is bound".
  if (check.expectedJkt && check.expectedJkt !== jkt)
    invalid('the DPoP key is not the key the token is bound to');
  return {
    jkt,
    jti,
    iat,
    // Past iat + maxAge the proof no longer verifies, so its id need not be remembered.
    oneTimeId: { namespace: `dpop:${jkt}`, id: jti, expiresAt: (iat + maxAge + 1) * 1000 },
  };
}
