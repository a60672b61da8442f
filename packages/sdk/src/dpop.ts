/**
 * DPoP proofs for the agent (RFC 9449 §4.2). Web Crypto through jose only: no `node:*`.
 * The key is generated non-extractable when the SDK makes it, so it cannot leave the process.
 */
import {
  base64url,
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type JWK,
  SignJWT,
} from 'jose';

export type DpopAlgorithm = 'ES256' | 'EdDSA';

export interface DpopKeyPair {
  readonly alg: DpopAlgorithm;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

/** RFC 9449 §4.2 `ath`: base64url(SHA-256(access token)). */
export async function accessTokenHash(token: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token));
  return base64url.encode(new Uint8Array(digest));
}

/** Signs one proof per call with one key. */
export class DpopSigner {
  readonly #key: DpopKeyPair;
  #publicJwk: JWK | null = null;
  #jkt: string | null = null;

  constructor(key: DpopKeyPair) {
    this.#key = key;
  }

  /** A fresh key pair (ES256 by default); the private key is not extractable. */
  static async generate(alg: DpopAlgorithm = 'ES256'): Promise<DpopSigner> {
    const pair = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
    return new DpopSigner({ alg, privateKey: pair.privateKey, publicKey: pair.publicKey });
  }

  async publicJwk(): Promise<JWK> {
    if (!this.#publicJwk) {
      const { kty, crv, x, y, n, e } = await exportJWK(this.#key.publicKey);
      this.#publicJwk = Object.fromEntries(
        Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined),
      ) as JWK;
    }
    return this.#publicJwk;
  }

  /** RFC 7638 thumbprint: what a bound lease's `cnf.jkt` names. */
  async thumbprint(): Promise<string> {
    this.#jkt ??= await calculateJwkThumbprint(await this.publicJwk(), 'sha256');
    return this.#jkt;
  }

  /** A proof for `method` `url` (query and fragment dropped, RFC 9449 §4.2), bound to `accessToken`. */
  async proof(method: string, url: string, accessToken?: string): Promise<string> {
    const u = new URL(url);
    const htu = `${u.protocol}//${u.host}${u.pathname}`;
    return new SignJWT({
      htm: method,
      htu,
      ...(accessToken ? { ath: await accessTokenHash(accessToken) } : {}),
    })
      .setProtectedHeader({ alg: this.#key.alg, typ: 'dpop+jwt', jwk: await this.publicJwk() })
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .sign(this.#key.privateKey);
  }
}
