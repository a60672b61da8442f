/**
 * The `access_token` issuer: a signed JWT access token (RFC 9068 profile, `typ` at+jwt)
 * carrying exactly the granted action and resource as RFC 9396 authorization_details.
 * Deterministic for a grant (Ed25519 signatures are): minted at decision time and again at
 * delivery, nothing secret stored. Nothing downstream to revoke: a revoked lease introspects
 * inactive at once (the resource server's duty is to introspect or honour `exp`).
 */
import { createHash } from 'node:crypto';
import type { CredentialPlan, Grant, IssuedCredential, Issuer } from '@countersign/core';
import { failpoint } from '@countersign/store';
import { SignJWT } from 'jose';
import type { SigningKey } from '../keys.js';

/** RFC 9396 §2: `type` names the authorization details type; we define `countersign_access`. */
export const AUTHORIZATION_DETAILS_TYPE = 'countersign_access';

export function credentialFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex')}`;
}

export interface AccessTokenOptions {
  readonly issuer: string;
  readonly key: SigningKey;
  /** The credential kind it reports (`access_token`, or `proxy` for proxy leases). */
  readonly kind?: string;
  /** The token's `aud`; by default the catalog's audience for the resource. */
  readonly audience?: (grant: Grant) => string;
  /** Why this issuer cannot serve a request, or null (see Issuer.supports). */
  readonly supports?: Issuer['supports'];
}

export function accessTokenIssuer(options: AccessTokenOptions): Issuer {
  const { issuer, key } = options;
  const kind = options.kind ?? 'access_token';
  const audienceOf = options.audience ?? ((grant: Grant) => grant.audience);
  const plan = (grant: Grant): CredentialPlan => {
    const audience = audienceOf(grant);
    return {
      credentialId: grant.leaseId,
      scope: {
        authorization_details: [
          { type: AUTHORIZATION_DETAILS_TYPE, actions: [grant.action], locations: [grant.resource] },
        ],
        audience,
        ...(grant.cnf ? { cnf: { jkt: grant.cnf.jkt } } : {}),
      },
    };
  };
  return {
    kind,
    mint: 'decision',
    downstream: false,
    supports: options.supports ?? (() => null),
    plan,
    async issue(grant: Grant): Promise<IssuedCredential> {
      const { credentialId: jti, scope } = plan(grant);
      const token = await new SignJWT({
        client_id: grant.agentId,
        task_id: grant.taskId,
        request_digest: grant.requestDigest,
        authorization_details: scope.authorization_details,
        // RFC 9449 §6.1: a DPoP-bound token names its key's thumbprint.
        ...(grant.cnf ? { cnf: { jkt: grant.cnf.jkt } } : {}),
      })
        // RFC 9068 §2.1: "Resource servers MUST verify that the typ header value is at+jwt".
        .setProtectedHeader({ alg: key.alg, typ: 'at+jwt', kid: key.kid })
        .setIssuer(issuer)
        .setSubject(grant.agentId)
        .setAudience(String(scope.audience))
        .setIssuedAt(Math.floor(grant.issuedAt / 1000))
        .setExpirationTime(Math.floor(grant.expiresAt / 1000))
        .setJti(jti)
        .sign(key.privateKey);
      failpoint('issuer.after-sign');
      return {
        credential: {
          type: kind,
          access_token: token,
          token_type: grant.cnf ? 'DPoP' : 'Bearer',
          expires_at: new Date(Math.floor(grant.expiresAt / 1000) * 1000).toISOString(),
          lease_id: grant.leaseId,
        },
        credentialId: jti,
        fingerprint: credentialFingerprint(token),
        scope,
      };
    },
    // Nothing exists outside Countersign: the lease's status is the revocation.
    async revoke() {},
  };
}
