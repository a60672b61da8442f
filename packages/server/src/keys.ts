/**
 * Countersign's own signing key (Ed25519). Dev mode generates one into the data dir with
 * mode 0600 and says so loudly; production points `signing_key_file` at a managed key.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CountersignError } from '@countersign/core';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'EdDSA';
  readonly privateKey: Awaited<ReturnType<typeof importJWK>>;
  /** The public half as published in the JWKS. */
  readonly publicJwk: JWK;
}

export async function generateSigningKeyFile(path: string): Promise<void> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify({ ...jwk, kid, alg: 'EdDSA', use: 'sig' }, null, 2)}\n`, {
    mode: 0o600,
  });
  chmodSync(path, 0o600);
}

export async function loadSigningKey(path: string): Promise<SigningKey> {
  if (!existsSync(path))
    throw new CountersignError('CS_CONFIG_INVALID', `signing key file not found: ${path}`);
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CountersignError('CS_CONFIG_INVALID', `signing key file is not a JWK: ${path}`, {
      cause: error,
    });
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
    throw new CountersignError('CS_CONFIG_INVALID', 'the signing key must be an Ed25519 private JWK');
  }
  const privateKey = await importJWK(jwk, 'EdDSA');
  const { d: _d, ...pub } = jwk;
  const kid = jwk.kid ?? (await calculateJwkThumbprint(pub));
  return {
    kid,
    alg: 'EdDSA',
    privateKey,
    publicJwk: { kty: pub.kty, crv: pub.crv, x: pub.x, kid, alg: 'EdDSA', use: 'sig' },
  };
}
