/** Reviewer lifecycle: invite, enroll a passkey, sign in, remove. Every step is audited. */
import type { AuditActor } from '../audit.js';
import { CountersignError } from '../errors.js';
import type { ReviewerCredentialRecord, ReviewerRecord } from '../records.js';
import type { DomainContext } from './context.js';

const EMAIL = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$/;
const GROUP = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function validateReviewerEmail(email: string): string {
  if (!EMAIL.test(email))
    throw new CountersignError('CS_INVALID_IDENTIFIER', `not an email address: ${JSON.stringify(email)}`);
  return email.toLowerCase();
}

export function validateGroups(groups: readonly string[]): string[] {
  if (groups.length === 0)
    throw new CountersignError('CS_INVALID_IDENTIFIER', 'a reviewer needs at least one group');
  for (const g of groups) {
    if (!GROUP.test(g))
      throw new CountersignError(
        'CS_INVALID_IDENTIFIER',
        `group ${JSON.stringify(g)} must match ${GROUP.source}`,
      );
  }
  return [...new Set(groups)].sort();
}

/** Records a one-time enrollment invite. The caller holds the token; only its hash is stored. */
export async function inviteReviewer({
  ctx,
  input,
  actor,
}: {
  ctx: DomainContext;
  input: { email: string; groups: readonly string[]; tokenHash: string; ttlSeconds: number };
  actor: AuditActor;
}): Promise<{ expiresAt: number }> {
  const now = ctx.clock.now();
  const email = validateReviewerEmail(input.email);
  const groups = validateGroups(input.groups);
  const expiresAt = now + input.ttlSeconds * 1000;
  await ctx.store.transaction(async (tx) => {
    await tx.insertInvite({
      tokenHash: input.tokenHash,
      email,
      groups,
      expiresAt,
      usedAt: null,
      createdAt: now,
    });
    await tx.appendAudit(
      {
        type: 'reviewer.invited',
        actor,
        data: { email, groups, expires_at: new Date(expiresAt).toISOString() },
      },
      now,
    );
  });
  return { expiresAt };
}

/**
 * Completes enrollment: consumes the invite (once), creates the reviewer (or adds a passkey to
 * an existing one with the same email) and registers the verified passkey, in one unit.
 */
export async function enrollReviewer({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: {
    tokenHash: string;
    reviewerId: string;
    webauthnUserId: string;
    credential: Omit<ReviewerCredentialRecord, 'reviewerId' | 'createdAt' | 'lastUsedAt'>;
  };
}): Promise<ReviewerRecord> {
  const now = ctx.clock.now();
  return ctx.store.transaction(async (tx) => {
    const invite = await tx.getInvite(input.tokenHash);
    if (!invite || !(await tx.consumeInvite(input.tokenHash, now))) {
      throw new CountersignError('CS_INVITE_INVALID', 'this enrollment link is unknown, used or expired');
    }
    let reviewer = await tx.getReviewerByEmail(invite.email);
    if (reviewer && reviewer.status !== 'active') {
      throw new CountersignError('CS_INVITE_INVALID', 'this reviewer was removed; ask for a new invite');
    }
    if (!reviewer) {
      reviewer = {
        id: input.reviewerId,
        email: invite.email,
        groups: invite.groups,
        status: 'active',
        webauthnUserId: input.webauthnUserId,
        createdAt: now,
      };
      await tx.insertReviewer(reviewer);
    }
    await tx.insertReviewerCredential({
      ...input.credential,
      reviewerId: reviewer.id,
      createdAt: now,
      lastUsedAt: null,
    });
    await tx.appendAudit(
      {
        type: 'reviewer.enrolled',
        actor: { type: 'reviewer', id: reviewer.id },
        data: { email: reviewer.email, groups: reviewer.groups, credential_id: input.credential.id },
      },
      now,
    );
    return reviewer;
  });
}

/** Opens a console session after a verified passkey login. */
export async function startReviewerSession({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: {
    reviewerId: string;
    tokenHash: string;
    absoluteSeconds: number;
    credentialId: string;
    /** The assertion's counter move; absent right after enrollment (no assertion yet). */
    counter?: { from: number; to: number };
  };
}): Promise<{ expiresAt: number }> {
  const now = ctx.clock.now();
  const expiresAt = now + input.absoluteSeconds * 1000;
  await ctx.store.transaction(async (tx) => {
    const reviewer = await tx.getReviewer(input.reviewerId);
    if (reviewer?.status !== 'active')
      throw new CountersignError('CS_SESSION_REQUIRED', 'unknown or removed reviewer');
    if (input.counter) await bumpCounter(tx, input.credentialId, input.counter, now);
    await tx.insertSession({
      tokenHash: input.tokenHash,
      reviewerId: reviewer.id,
      createdAt: now,
      lastSeenAt: now,
      expiresAt,
      revokedAt: null,
    });
    await tx.appendAudit(
      {
        type: 'reviewer.login',
        actor: { type: 'reviewer', id: reviewer.id },
        data: { credential_id: input.credentialId },
      },
      now,
    );
  });
  return { expiresAt };
}

/**
 * A cloned authenticator shows as a signature counter that does not grow (THREATS.md A10).
 * Authenticators that do not count report 0 every time: nothing to compare then.
 */
export async function bumpCounter(
  tx: Pick<import('../store-port.js').StoreTx, 'updateCredentialCounter'>,
  credentialId: string,
  counter: { from: number; to: number },
  at: number,
): Promise<void> {
  if (!(await tx.updateCredentialCounter(credentialId, counter.to, at))) {
    throw new CountersignError(
      'CS_ASSERTION_INVALID',
      'the authenticator signature counter did not increase (cloned key?)',
    );
  }
}

export async function endReviewerSession({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { tokenHash: string; reviewerId: string };
}) {
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    if ((await tx.revokeSessions({ tokenHash: input.tokenHash }, now)) > 0) {
      await tx.appendAudit(
        { type: 'reviewer.logout', actor: { type: 'reviewer', id: input.reviewerId }, data: {} },
        now,
      );
    }
  });
}

/** Removes a reviewer: their sessions end and their votes stop counting at finalisation (A8). */
export async function removeReviewer({
  ctx,
  input,
  actor,
}: {
  ctx: DomainContext;
  input: { email: string };
  actor: AuditActor;
}) {
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    const reviewer = await tx.getReviewerByEmail(validateReviewerEmail(input.email));
    if (!reviewer) throw new CountersignError('CS_NOT_FOUND', `no reviewer ${input.email}`);
    if (!(await tx.setReviewerStatus(reviewer.id, 'active', 'removed'))) {
      throw new CountersignError('CS_REQUEST_CLOSED', `${input.email} is already removed`);
    }
    await tx.revokeSessions({ reviewerId: reviewer.id }, now);
    await tx.appendAudit(
      { type: 'reviewer.removed', actor, data: { reviewer_id: reviewer.id, email: reviewer.email } },
      now,
    );
  });
}
