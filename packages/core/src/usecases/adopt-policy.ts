/**
 * adoptPolicy: an admin adopts a suggested policy. Never automatic: the admin's passkey
 * assertion over a challenge derived from the policy text is verified by the caller, and this
 * unit consumes that one-time challenge, moves the passkey's counter and writes the
 * `policy.adopted` audit event, all or nothing. The caller writes the file only after.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../digest.js';
import { CountersignError } from '../errors.js';
import type { ReviewerRecord } from '../records.js';
import type { DomainContext } from './context.js';
import { bumpCounter } from './reviewers.js';

export const ADOPTION_CHALLENGE_TAG = 'countersign/policy-adoption/v1\0';

/** The bytes an admin's passkey signs to adopt one policy text: nothing else verifies. */
export function adoptionChallenge(input: {
  readonly policyId: string;
  readonly textSha256: string;
  readonly activeVersion: string;
  readonly reviewerId: string;
  readonly nonce: string;
  readonly expiresAt: number;
}): Uint8Array {
  return sha256(
    utf8ToBytes(
      ADOPTION_CHALLENGE_TAG +
        canonicalJson({
          policy_id: input.policyId,
          text_sha256: input.textSha256,
          active_version: input.activeVersion,
          reviewer_id: input.reviewerId,
          nonce: input.nonce,
          expires_at: input.expiresAt,
        }),
    ),
  );
}

export async function adoptPolicy({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: {
    reviewer: ReviewerRecord;
    adminGroup: string;
    challengeId: string;
    policyId: string;
    textSha256: string;
    evidence: Readonly<Record<string, unknown>>;
    assertion: { credentialId: string; assertionHash: string; counter: { from: number; to: number } };
  };
}): Promise<void> {
  if (input.reviewer.status !== 'active' || !input.reviewer.groups.includes(input.adminGroup))
    throw new CountersignError('CS_NOT_ELIGIBLE', `only members of ${input.adminGroup} may adopt policies`);
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    const challenge = await tx.getChallenge(input.challengeId);
    if (
      challenge?.purpose !== 'adopt_policy' ||
      challenge.reviewerId !== input.reviewer.id ||
      challenge.requestId !== input.policyId ||
      !(await tx.consumeChallenge(challenge.id, now))
    ) {
      throw new CountersignError(
        'CS_ASSERTION_INVALID',
        'the challenge is unknown, used, expired, or for another policy',
      );
    }
    await bumpCounter(tx, input.assertion.credentialId, input.assertion.counter, now);
    await tx.appendAudit(
      {
        type: 'policy.adopted',
        actor: { type: 'reviewer', id: input.reviewer.id },
        data: {
          policy_id: input.policyId,
          text_sha256: input.textSha256,
          credential_id: input.assertion.credentialId,
          assertion_hash: input.assertion.assertionHash,
          evidence: input.evidence,
        },
      },
      now,
    );
  });
}
