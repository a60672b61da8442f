/**
 * The `access_token` issuer: a signed JWT access token (RFC 9068 profile, `typ` at+jwt)
 * carrying exactly the granted action and resource as RFC 9396 authorization_details.
 */
import { createHash } from 'node:crypto';
import type { Grant, IssuedCredential, Issuer } from '@countersign/core';
import { SignJWT } from 'jose';
import type { SigningKey } from '../keys.js';

/** RFC 9396 §2: `type` names the authorization details type; we define `countersign_access`. */
export const AUTHORIZATION_DETAILS_TYPE = 'countersign_access';

export function credentialFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex')}`;
}

export function accessTokenIssuer(options: { issuer: string; key: SigningKey }): Issuer {
  const { issuer, key } = options;
  return {
    kind: 'access_token',
    async issue(grant: Grant): Promise<IssuedCredential> {
      const authorizationDetails = [
        { type: AUTHORIZATION_DETAILS_TYPE, actions: [grant.action], locations: [grant.resource] },
      ];
      const jti = grant.leaseId;
      const token = await new SignJWT({
        client_id: grant.agentId,
        task_id: grant.taskId,
        request_digest: grant.requestDigest,
        authorization_details: authorizationDetails,
        // RFC 9449 §6.1: a DPoP-bound token names its key's thumbprint.
        ...(grant.cnf ? { cnf: { jkt: grant.cnf.jkt } } : {}),
      })
        // RFC 9068 §2.1: "Resource servers MUST verify that the typ header value is at+jwt".
        .setProtectedHeader({ alg: key.alg, typ: 'at+jwt', kid: key.kid })
        .setIssuer(issuer)
        .setSubject(grant.agentId)
        .setAudience(grant.audience)
        .setIssuedAt(Math.floor(grant.issuedAt / 1000))
        .setExpirationTime(Math.floor(grant.expiresAt / 1000))
        .setJti(jti)
        .sign(key.privateKey);
      return {
        credential: {
          type: 'access_token',
          access_token: token,
          token_type: grant.cnf ? 'DPoP' : 'Bearer',
          expires_at: new Date(Math.floor(grant.expiresAt / 1000) * 1000).toISOString(),
          lease_id: grant.leaseId,
        },
        credentialId: jti,
        fingerprint: credentialFingerprint(token),
        scope: {
          authorization_details: authorizationDetails,
          audience: grant.audience,
          ...(grant.cnf ? { cnf: { jkt: grant.cnf.jkt } } : {}),
        },
      };
    },
  };
}
