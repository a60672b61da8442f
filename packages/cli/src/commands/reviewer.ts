import { inviteReviewer, removeReviewer } from '@countersign/core';
import { newSessionToken } from '@countersign/server';
import { openLocal } from '../local.js';

const OPERATOR = { type: 'operator' as const, id: process.env.USER ?? 'operator' };
/** Enrollment links are single use and live 24 hours. */
export const INVITE_TTL_SECONDS = 24 * 60 * 60;

export async function reviewerInvite(home: string, email: string, groups: string[]) {
  const local = await openLocal(home);
  try {
    const { token, tokenHash } = newSessionToken();
    const { expiresAt } = await inviteReviewer({
      ctx: local.deps.ctx,
      actor: OPERATOR,
      input: { email, groups, tokenHash, ttlSeconds: INVITE_TTL_SECONDS },
    });
    // The token travels in the fragment: browsers never send it to the server or to logs.
    return { link: `${local.deps.config.issuer}/console/#/enroll/${token}`, expiresAt };
  } finally {
    await local.close();
  }
}

export async function reviewerList(home: string) {
  const local = await openLocal(home);
  try {
    const reviewers = await local.deps.ctx.store.read((tx) => tx.listReviewers());
    const out = [];
    for (const r of reviewers) {
      const keys = await local.deps.ctx.store.read((tx) => tx.listReviewerCredentials(r.id));
      out.push({ ...r, passkeys: keys.length });
    }
    return out;
  } finally {
    await local.close();
  }
}

export async function reviewerRemove(home: string, email: string) {
  const local = await openLocal(home);
  try {
    await removeReviewer({ ctx: local.deps.ctx, actor: OPERATOR, input: { email } });
  } finally {
    await local.close();
  }
}
