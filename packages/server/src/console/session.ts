/**
 * Reviewer sessions: a random token in a cookie, only its hash stored. `__Host-` prefix over
 * https, HttpOnly, SameSite=Strict, idle and absolute timeouts. A session lets a reviewer read
 * the queue; it never decides anything on its own (every vote needs a fresh passkey assertion).
 */
import { createHash, randomBytes } from 'node:crypto';
import { CountersignError, type ReviewerRecord } from '@countersign/core';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { ServerDeps } from '../app.js';

export const SESSION_IDLE_SECONDS = 30 * 60;
export const SESSION_ABSOLUTE_SECONDS = 12 * 60 * 60;

export function cookieName(deps: ServerDeps): string {
  return deps.config.issuer.startsWith('https://') ? '__Host-cs_session' : 'cs_session';
}

export function newSessionToken(): { token: string; tokenHash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, tokenHash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function setSessionCookie(deps: ServerDeps, c: Context, token: string): void {
  setCookie(c, cookieName(deps), token, {
    httpOnly: true,
    sameSite: 'Strict',
    path: '/',
    secure: deps.config.issuer.startsWith('https://'),
    maxAge: SESSION_ABSOLUTE_SECONDS,
  });
}

export function clearSessionCookie(deps: ServerDeps, c: Context): void {
  deleteCookie(c, cookieName(deps), { path: '/', secure: deps.config.issuer.startsWith('https://') });
}

/** The reviewer behind the request's session cookie, or a CS_SESSION_REQUIRED error. */
export async function requireReviewer(
  deps: ServerDeps,
  c: Context,
): Promise<{ reviewer: ReviewerRecord; tokenHash: string }> {
  const token = getCookie(c, cookieName(deps));
  if (!token || token.length > 128)
    throw new CountersignError('CS_SESSION_REQUIRED', 'sign in with your passkey');
  const tokenHash = hashToken(token);
  const { store, clock } = deps.ctx;
  const now = clock.now();
  const session = await store.read((tx) => tx.getSession(tokenHash));
  if (
    !session ||
    session.revokedAt !== null ||
    session.expiresAt <= now ||
    session.lastSeenAt + SESSION_IDLE_SECONDS * 1000 <= now
  ) {
    throw new CountersignError('CS_SESSION_REQUIRED', 'your session ended: sign in with your passkey');
  }
  const reviewer = await store.read((tx) => tx.getReviewer(session.reviewerId));
  if (reviewer?.status !== 'active') throw new CountersignError('CS_SESSION_REQUIRED', 'reviewer removed');
  // Idle timeout: refresh at most once a minute to keep writes off the read path.
  if (now - session.lastSeenAt > 60_000) await store.transaction((tx) => tx.touchSession(tokenHash, now));
  return { reviewer, tokenHash };
}

/**
 * CSRF defence for cookie-authenticated state changes (THREATS.md A9): the browser's Origin
 * must be ours. SameSite=Strict already keeps the cookie off cross-site requests; this is the
 * second lock.
 */
export function requireSameOrigin(deps: ServerDeps, c: Context): void {
  const origin = c.req.header('origin');
  if (origin !== new URL(deps.config.issuer).origin) {
    throw new CountersignError('CS_ORIGIN_REJECTED', 'cross-origin request refused');
  }
}
