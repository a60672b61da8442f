/** DPoP proofs for tests (RFC 9449 §4.2), built with jose like any client would. */
import { createHash } from 'node:crypto';
import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface DpopKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly jkt: string;
  readonly alg: 'ES256' | 'EdDSA';
}

export async function newDpopKey(alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<DpopKey> {
  const pair = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const publicJwk = await exportJWK(pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk), alg };
}

export const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

export interface ProofOptions {
  readonly method: string;
  readonly url: string;
  /** Epoch seconds. */
  readonly iat: number;
  readonly accessToken?: string | null;
  readonly jti?: string;
  readonly header?: Record<string, unknown>;
  readonly claims?: Record<string, unknown>;
}

export function dpopProof(key: DpopKey, o: ProofOptions): Promise<string> {
  const claims: Record<string, unknown> = {
    jti: o.jti ?? crypto.randomUUID(),
    htm: o.method,
    htu: o.url,
    iat: o.iat,
    ...(o.accessToken ? { ath: ath(o.accessToken) } : {}),
    ...o.claims,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...o.header } as never)
    .sign(key.privateKey);
}
