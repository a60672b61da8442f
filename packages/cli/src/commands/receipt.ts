import { readFileSync } from 'node:fs';
import { CountersignError } from '@countersign/core';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const RECEIPT_TYP = 'countersign-receipt+jwt';

/** Verifies an approval receipt offline-style against the server's published JWKS. */
export async function receiptVerify(file: string, server: string) {
  const text = readFileSync(file, 'utf8').trim();
  // Accept the bare JWS or the agent's JSON answer that carries it.
  let jws = text;
  if (text.startsWith('{')) {
    const parsed = JSON.parse(text) as { receipt?: string };
    if (typeof parsed.receipt !== 'string')
      throw new CountersignError('CS_INVALID_REQUEST', `${file} has no "receipt"`);
    jws = parsed.receipt;
  }
  const jwks = createRemoteJWKSet(new URL(`${server}/.well-known/jwks.json`));
  try {
    const { payload } = await jwtVerify(jws, jwks, {
      typ: RECEIPT_TYP,
      issuer: server,
      algorithms: ['EdDSA'],
    });
    return payload;
  } catch (error) {
    throw new CountersignError(
      'CS_TOKEN_INVALID',
      `the receipt does not verify: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
