/**
 * Approval receipts: a compact JWS naming the request digest, the verdict, each approver and
 * the hash of their WebAuthn assertion, the policy version and the lease. Anyone can verify it
 * offline against /.well-known/jwks.json (`countersign receipt verify <file>`).
 */
import type { Clock, ReceiptSigner } from '@countersign/core';
import { SignJWT } from 'jose';
import type { SigningKey } from '../keys.js';

/** Explicit `typ` so a receipt is never mistaken for an access token or an assertion (RFC 8725 §3.11). */
export const RECEIPT_TYP = 'countersign-receipt+jwt';

export function receiptSigner(options: { issuer: string; key: SigningKey; clock: Clock }): ReceiptSigner {
  return {
    sign: (claims) =>
      new SignJWT({ ...claims })
        .setProtectedHeader({ alg: options.key.alg, typ: RECEIPT_TYP, kid: options.key.kid })
        .setIssuer(options.issuer)
        .setSubject(String(claims.agent_id))
        .setIssuedAt(Math.floor(options.clock.now() / 1000))
        .setJti(String(claims.request_id))
        .sign(options.key.privateKey),
  };
}
