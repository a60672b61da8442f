/**
 * The reviewer console's API (docs/review-api.md). Thin: validate, call a use case, map. The
 * WebAuthn ceremonies are verified here with SimpleWebAuthn against challenges the server
 * made and stored; decision challenges are recomputed from stored state, never taken from the
 * client (THREATS.md INV-4).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type AccessRequestRecord,
  adoptionChallenge,
  adoptPolicy,
  type ChallengeRecord,
  CountersignError,
  castVote,
  decisionChallenge,
  endReviewerSession,
  enrollReviewer,
  ineligibility,
  type LeaseStatus,
  type ReviewerRecord,
  recordEvidenceView,
  requestClaims,
  revokeLease,
  SUGGESTION_MIN_APPROVALS,
  startReviewerSession,
  suspendAgent,
  verifyAuditChain,
} from '@countersign/core';
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { ServerDeps } from '../app.js';
import {
  clearSessionCookie,
  hashToken,
  newSessionToken,
  requireReviewer,
  requireSameOrigin,
  SESSION_ABSOLUTE_SECONDS,
  setSessionCookie,
} from '../console/session.js';
import { CHALLENGE_TTL_SECONDS, relyingParty } from '../console/webauthn.js';
import { newRandomId } from '../ids.js';
import { jsonBodyLimit, readJson } from '../middleware/json.js';
import { computeSuggestions, suggestionView, writeAdoptedPolicy } from '../suggestions.js';
import { iso, leaseView } from '../views.js';
import { windowParam } from './insights.js';

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const Token = z.string().regex(/^[A-Za-z0-9_-]{20,128}$/);
const WebAuthnResponse = z.record(z.string(), z.unknown());
const VerdictSchema = z.enum(['approve', 'deny']);

function assertionInvalid(message: string, cause?: unknown): never {
  throw new CountersignError('CS_ASSERTION_INVALID', message, cause === undefined ? undefined : { cause });
}

function summary(r: AccessRequestRecord, approvalsGiven: number) {
  return {
    request_id: r.id,
    status: r.status,
    agent_id: r.agentId,
    action: r.action,
    resource: r.resource,
    risk_score: r.risk.score,
    reviewer_group: r.decision.obligations.reviewerGroup,
    approvals_needed: r.decision.obligations.approvals,
    approvals_given: approvalsGiven,
    created_at: iso(r.createdAt),
    deadline_at: iso(r.deadlineAt),
  };
}

function reviewerView(r: ReviewerRecord) {
  return { id: r.id, email: r.email, groups: r.groups };
}

export function consoleRoutes(deps: ServerDeps): Hono {
  const { ctx } = deps;
  const rp = relyingParty(deps);
  const app = new Hono();

  // Every POST here changes state: same origin only (A9), bounded JSON bodies.
  app.use('/v1/console/*', async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') requireSameOrigin(deps, c);
    await next();
  });

  /** A verified passkey ceremony opens a session: new random token, only its hash stored. */
  async function openSession(
    c: Context,
    reviewer: ReviewerRecord,
    credentialId: string,
    counter?: { from: number; to: number },
  ) {
    const session = newSessionToken();
    await startReviewerSession({
      ctx,
      input: {
        reviewerId: reviewer.id,
        tokenHash: session.tokenHash,
        absoluteSeconds: SESSION_ABSOLUTE_SECONDS,
        credentialId,
        ...(counter ? { counter } : {}),
      },
    });
    setSessionCookie(deps, c, session.token);
    return c.json({ reviewer: reviewerView(reviewer) });
  }

  // ---- enrollment -------------------------------------------------------------------------
  app.post('/v1/console/enroll/options', jsonBodyLimit, async (c) => {
    const { value } = await readJson(c, z.strictObject({ token: Token }));
    const tokenHash = hashToken(value.token);
    const now = ctx.clock.now();
    const invite = await ctx.store.read((tx) => tx.getInvite(tokenHash));
    if (!invite || invite.usedAt !== null || invite.expiresAt <= now) {
      throw new CountersignError('CS_INVITE_INVALID', 'this enrollment link is unknown, used or expired');
    }
    const existing = await ctx.store.read((tx) => tx.getReviewerByEmail(invite.email));
    const reviewerId = existing?.id ?? newRandomId('rev');
    const userHandle = existing ? Buffer.from(existing.webauthnUserId, 'base64url') : randomBytes(32);
    const challenge = randomBytes(32);
    const challengeId = newRandomId('chl');
    const excludeCredentials = existing
      ? (await ctx.store.read((tx) => tx.listReviewerCredentials(existing.id))).map((k) => ({ id: k.id }))
      : [];
    const options = await generateRegistrationOptions({
      rpName: rp.name,
      rpID: rp.id,
      userName: invite.email,
      userID: new Uint8Array(userHandle),
      challenge: new Uint8Array(challenge),
      attestationType: 'none',
      excludeCredentials,
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    await ctx.store.transaction((tx) =>
      tx.insertChallenge({
        id: challengeId,
        purpose: 'enroll',
        // An enrollment challenge is bound to the invite (its token hash) and carries the
        // reviewer id and WebAuthn user handle it promised in the options.
        reviewerId,
        requestId: tokenHash,
        verdict: null,
        nonce: b64url(userHandle),
        challenge: b64url(challenge),
        expiresAt: now + CHALLENGE_TTL_SECONDS * 1000,
        usedAt: null,
      }),
    );
    return c.json({ options, challenge_id: challengeId, email: invite.email, groups: invite.groups });
  });

  app.post('/v1/console/enroll/verify', jsonBodyLimit, async (c) => {
    const { value } = await readJson(
      c,
      z.strictObject({ token: Token, challenge_id: z.string().max(64), response: WebAuthnResponse }),
    );
    const tokenHash = hashToken(value.token);
    const now = ctx.clock.now();
    const challenge = await ctx.store.read((tx) => tx.getChallenge(value.challenge_id));
    if (challenge?.purpose !== 'enroll' || challenge.requestId !== tokenHash) {
      assertionInvalid('unknown enrollment challenge');
    }
    if (!(await ctx.store.transaction((tx) => tx.consumeChallenge(challenge.id, now)))) {
      assertionInvalid('this enrollment challenge was used or expired');
    }
    let verification: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      verification = await verifyRegistrationResponse({
        response: value.response as unknown as RegistrationResponseJSON,
        expectedChallenge: challenge.challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        requireUserVerification: true,
      });
    } catch (error) {
      assertionInvalid(`passkey registration rejected: ${(error as Error).message}`, error);
    }
    if (!verification.verified) assertionInvalid('passkey registration rejected');
    const { credential } = verification.registrationInfo;
    const reviewer = await enrollReviewer({
      ctx,
      input: {
        tokenHash,
        reviewerId: challenge.reviewerId!,
        webauthnUserId: challenge.nonce,
        credential: {
          id: credential.id,
          publicKey: b64url(credential.publicKey),
          counter: credential.counter,
          transports: credential.transports ?? [],
        },
      },
    });
    return openSession(c, reviewer, credential.id);
  });

  // ---- login ------------------------------------------------------------------------------
  app.post('/v1/console/login/options', jsonBodyLimit, async (c) => {
    const now = ctx.clock.now();
    const challenge = randomBytes(32);
    const id = newRandomId('chl');
    const options = await generateAuthenticationOptions({
      rpID: rp.id,
      challenge: new Uint8Array(challenge),
      userVerification: 'required',
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    await ctx.store.transaction((tx) =>
      tx.insertChallenge({
        id,
        purpose: 'login',
        reviewerId: null,
        requestId: null,
        verdict: null,
        nonce: id,
        challenge: b64url(challenge),
        expiresAt: now + CHALLENGE_TTL_SECONDS * 1000,
        usedAt: null,
      }),
    );
    return c.json({ options, login_id: id });
  });

  app.post('/v1/console/login/verify', jsonBodyLimit, async (c) => {
    const { value } = await readJson(
      c,
      z.strictObject({ login_id: z.string().max(64), response: WebAuthnResponse }),
    );
    const now = ctx.clock.now();
    const challenge = await ctx.store.read((tx) => tx.getChallenge(value.login_id));
    if (challenge?.purpose !== 'login') assertionInvalid('unknown login challenge');
    if (!(await ctx.store.transaction((tx) => tx.consumeChallenge(challenge.id, now)))) {
      assertionInvalid('this login challenge was used or expired');
    }
    const response = value.response as unknown as AuthenticationResponseJSON;
    const credential =
      typeof response.id === 'string'
        ? await ctx.store.read((tx) => tx.getReviewerCredential(response.id))
        : null;
    if (!credential) assertionInvalid('this passkey is not registered here');
    const verified = await verifyAssertion(response, challenge.challenge, credential);
    const reviewer = await ctx.store.read((tx) => tx.getReviewer(credential.reviewerId));
    if (reviewer?.status !== 'active')
      throw new CountersignError('CS_SESSION_REQUIRED', 'this reviewer was removed');
    return openSession(c, reviewer, credential.id, { from: credential.counter, to: verified.newCounter });
  });

  async function verifyAssertion(
    response: AuthenticationResponseJSON,
    expectedChallenge: string,
    credential: { id: string; publicKey: string; counter: number; transports: readonly string[] },
  ) {
    let result: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
    try {
      result = await verifyAuthenticationResponse({
        response,
        expectedChallenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        credential: {
          id: credential.id,
          publicKey: new Uint8Array(Buffer.from(credential.publicKey, 'base64url')),
          counter: credential.counter,
        },
        requireUserVerification: true,
      });
    } catch (error) {
      assertionInvalid(`passkey assertion rejected: ${(error as Error).message}`, error);
    }
    if (!result.verified || !result.authenticationInfo.userVerified)
      assertionInvalid('passkey assertion rejected');
    return result.authenticationInfo;
  }

  /** Options for a passkey assertion only this reviewer's passkeys can answer (THREATS.md INV-4). */
  async function reviewerAssertionOptions(reviewerId: string, challenge: Uint8Array) {
    const keys = await ctx.store.read((tx) => tx.listReviewerCredentials(reviewerId));
    return generateAuthenticationOptions({
      rpID: rp.id,
      challenge: new Uint8Array(challenge),
      allowCredentials: keys.map((k) => ({ id: k.id, transports: [...k.transports] })),
      userVerification: 'required',
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
  }

  /**
   * Step-up, first half: a one-time challenge bound to one reviewer and one subject (a review
   * and verdict, or a suggested policy), stored, and answered with the assertion options.
   */
  async function issueStepUp(
    c: Context,
    bound: Pick<ChallengeRecord, 'purpose' | 'reviewerId' | 'requestId' | 'verdict' | 'expiresAt'> & {
      reviewerId: string;
    },
    challengeFor: (nonce: string) => Uint8Array,
  ) {
    const id = newRandomId('chl');
    const nonce = randomBytes(16).toString('base64url');
    const challenge = challengeFor(nonce);
    const options = await reviewerAssertionOptions(bound.reviewerId, challenge);
    await ctx.store.transaction((tx) =>
      tx.insertChallenge({ id, ...bound, nonce, challenge: b64url(challenge), usedAt: null }),
    );
    return c.json({ options, challenge_id: id });
  }

  /**
   * Step-up, second half: the passkey response verified against the challenge recomputed from
   * stored state. A10: the passkey must be registered to THIS reviewer. Returns the assertion as
   * the audited use case records it.
   */
  async function verifyStepUp(reviewerId: string, answer: Record<string, unknown>, expected: string) {
    const response = answer as unknown as AuthenticationResponseJSON;
    const credential =
      typeof response.id === 'string'
        ? await ctx.store.read((tx) => tx.getReviewerCredential(response.id))
        : null;
    if (!credential || credential.reviewerId !== reviewerId)
      assertionInvalid('this passkey is not registered to you');
    const verified = await verifyAssertion(response, expected, credential);
    return {
      credentialId: credential.id,
      assertionHash: `sha256:${createHash('sha256').update(JSON.stringify(response)).digest('hex')}`,
      counter: { from: credential.counter, to: verified.newCounter },
    };
  }

  app.post('/v1/console/logout', async (c) => {
    const { reviewer, tokenHash } = await requireReviewer(deps, c);
    await endReviewerSession({ ctx, input: { tokenHash, reviewerId: reviewer.id } });
    clearSessionCookie(deps, c);
    return c.json({});
  });

  app.get('/v1/console/me', async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    return c.json(reviewerView(reviewer));
  });

  // ---- queue, evidence, history -----------------------------------------------------------
  async function approvalsGiven(requestId: string) {
    return (await ctx.store.read((tx) => tx.listVotes(requestId))).filter((v) => v.verdict === 'approve')
      .length;
  }

  app.get('/v1/console/reviews', async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    const now = ctx.clock.now();
    const pending = (await ctx.store.read((tx) => tx.listReviewRequests({ pending: true }, 500))).filter(
      (r) =>
        (r.deadlineAt === null || r.deadlineAt > now) &&
        r.decision.obligations.reviewerGroup !== null &&
        reviewer.groups.includes(r.decision.obligations.reviewerGroup),
    );
    pending.sort((a, b) => b.risk.score - a.risk.score || (a.deadlineAt ?? 0) - (b.deadlineAt ?? 0));
    const items = [];
    for (const r of pending) items.push(summary(r, await approvalsGiven(r.id)));
    return c.json({ items });
  });

  app.get('/v1/console/history', async (c) => {
    await requireReviewer(deps, c);
    const status = c.req.query('status');
    const agent = c.req.query('agent');
    const limit = Math.min(200, Math.max(1, Number(c.req.query('limit') ?? 50) || 50));
    const allowed = ['allowed', 'denied', 'expired', 'withdrawn', 'cancelled'] as const;
    if (status !== undefined && !(allowed as readonly string[]).includes(status)) {
      throw new CountersignError('CS_INVALID_REQUEST', `status must be one of ${allowed.join(', ')}`);
    }
    const rows = await ctx.store.read((tx) =>
      tx.listReviewRequests(
        {
          pending: false,
          ...(status ? { status: status as (typeof allowed)[number] } : {}),
          ...(agent ? { agentId: agent } : {}),
        },
        limit,
      ),
    );
    const items = [];
    for (const r of rows) items.push(summary(r, await approvalsGiven(r.id)));
    return c.json({ items });
  });

  app.get('/v1/console/requests/:id', async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    const record = await ctx.store.read((tx) => tx.getRequest(c.req.param('id')));
    if (!record || record.deadlineAt === null) throw new CountersignError('CS_NOT_FOUND', 'no such review');
    const agent = await ctx.store.read((tx) => tx.getAgent(record.agentId));
    const votes = await ctx.store.read((tx) => tx.listVotes(record.id));
    const claims = requestClaims(record);
    const facts = claims.resource_facts as Record<string, unknown>;
    // Novelty: what this agent has never been granted before (DESIGN: better-informed humans).
    const earlier = (
      await ctx.store.read((tx) => tx.listAgentRequests(record.agentId, 'allowed', 1000))
    ).filter((r) => r.id !== record.id);
    const earlierEnvs = new Set(earlier.map((r) => String(requestClaims(r).resource_facts.environment)));
    const now = ctx.clock.now();
    let cannot: string | null = null;
    if (record.status !== 'pending' || (record.deadlineAt !== null && record.deadlineAt <= now))
      cannot = 'the review is closed';
    else if (votes.some((v) => v.reviewerId === reviewer.id)) cannot = 'you already voted';
    else cannot = ineligibility(reviewer, record, agent);
    // The first look at a review that is still open: a vote seconds later, or with no look at
    // all, is a rubber-stamp signal in the reviewer-load analytics (OWASP Agentic T10).
    if (
      record.status === 'pending' &&
      record.deadlineAt > now &&
      !votes.some((v) => v.reviewerId === reviewer.id)
    )
      // Best effort: the evidence stays readable when the store refuses writes (R6).
      await recordEvidenceView({ ctx, input: { requestId: record.id, reviewerId: reviewer.id } }).catch(
        (error) => deps.log.warn({ err: (error as Error).message }, 'could not record an evidence view'),
      );
    const voters = new Map<string, string>();
    for (const v of votes)
      voters.set(
        v.reviewerId,
        (await ctx.store.read((tx) => tx.getReviewer(v.reviewerId)))?.email ?? v.reviewerId,
      );
    return c.json({
      request_id: record.id,
      status:
        record.deadlineAt !== null && record.status === 'pending' && record.deadlineAt <= now
          ? 'expired'
          : record.status,
      digest: record.digest,
      policy_version: record.decision.policyVersion,
      created_at: iso(record.createdAt),
      deadline_at: iso(record.deadlineAt),
      agent: agent
        ? {
            id: agent.id,
            owner: agent.owner,
            boundary: agent.boundary,
            environment: agent.environment,
            status: agent.status,
          }
        : { id: record.agentId, owner: null, boundary: null, environment: null, status: 'unknown' },
      action: record.action,
      action_class: claims.action_class,
      resource: {
        uri: record.resource,
        sensitivity: facts.sensitivity,
        environment: facts.environment,
        owner: facts.owner,
        boundary: facts.boundary,
        catalog_pattern: facts.pattern,
      },
      claims: {
        purpose: claims.intent.purpose,
        task_id: claims.intent.task_id,
        ticket: claims.intent.ticket ?? null,
        on_behalf_of: claims.context.on_behalf_of ?? null,
        tool_chain: claims.context.tool_chain ?? [],
        model_output: claims.context.model_output ?? null,
        tool_call: claims.context.tool_call ?? null,
        environment: claims.context.environment ?? null,
        ttl_seconds: claims.ttl_seconds,
      },
      risk: record.risk,
      policies: record.decision.determiningPolicies,
      obligations: {
        max_ttl_seconds: record.decision.obligations.maxTtlSeconds,
        approvals: record.decision.obligations.approvals,
        reviewer_group: record.decision.obligations.reviewerGroup,
        deadline_seconds: record.decision.obligations.deadlineSeconds,
        separation: record.decision.obligations.separation,
      },
      votes: votes.map((v) => ({
        reviewer_id: v.reviewerId,
        email: voters.get(v.reviewerId),
        verdict: v.verdict,
        at: iso(v.createdAt),
      })),
      novelty: {
        first_action: !earlier.some((r) => r.action === record.action),
        first_resource: !earlier.some((r) => r.resource === record.resource),
        first_environment: !earlierEnvs.has(String(facts.environment)),
      },
      can_decide: cannot === null,
      cannot_decide_reason: cannot,
    });
  });

  // ---- deciding ---------------------------------------------------------------------------
  app.post('/v1/console/requests/:id/decision/options', jsonBodyLimit, async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    const { value } = await readJson(c, z.strictObject({ verdict: VerdictSchema }));
    const record = await ctx.store.read((tx) => tx.getRequest(c.req.param('id')));
    const now = ctx.clock.now();
    if (!record || record.deadlineAt === null) throw new CountersignError('CS_NOT_FOUND', 'no such review');
    if (record.status !== 'pending' || record.deadlineAt <= now)
      throw new CountersignError('CS_REVIEW_CLOSED', 'the review is closed');
    const agent = await ctx.store.read((tx) => tx.getAgent(record.agentId));
    const why = ineligibility(reviewer, record, agent);
    if (why) throw new CountersignError('CS_NOT_ELIGIBLE', why);
    const expiresAt = Math.min(record.deadlineAt, now + CHALLENGE_TTL_SECONDS * 1000);
    return issueStepUp(
      c,
      {
        purpose: 'decision',
        reviewerId: reviewer.id,
        requestId: record.id,
        verdict: value.verdict,
        expiresAt,
      },
      (nonce) =>
        decisionChallenge({
          requestId: record.id,
          requestDigest: record.digest,
          policyVersion: record.decision.policyVersion,
          verdict: value.verdict,
          reviewerId: reviewer.id,
          nonce,
          expiresAt,
        }),
    );
  });

  app.post('/v1/console/requests/:id/decision', jsonBodyLimit, async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    const { value } = await readJson(
      c,
      z.strictObject({
        verdict: VerdictSchema,
        challenge_id: z.string().max(64),
        response: WebAuthnResponse,
      }),
    );
    const requestId = c.req.param('id');
    const [challenge, record] = await ctx.store.read(
      async (tx) => [await tx.getChallenge(value.challenge_id), await tx.getRequest(requestId)] as const,
    );
    if (!record) throw new CountersignError('CS_NOT_FOUND', 'no such review');
    if (
      challenge?.purpose !== 'decision' ||
      challenge.reviewerId !== reviewer.id ||
      challenge.requestId !== requestId ||
      challenge.verdict !== value.verdict
    ) {
      assertionInvalid('the challenge is unknown or for another decision');
    }
    // Recompute the challenge from the request as stored NOW: if anything changed since the
    // options were made, the assertion signs another value and fails (THREATS.md A3).
    const expected = b64url(
      decisionChallenge({
        requestId: record.id,
        requestDigest: record.digest,
        policyVersion: record.decision.policyVersion,
        verdict: value.verdict,
        reviewerId: reviewer.id,
        nonce: challenge.nonce,
        expiresAt: challenge.expiresAt,
      }),
    );
    const assertion = await verifyStepUp(reviewer.id, value.response, expected);
    const result = await castVote({
      ctx,
      input: {
        reviewer,
        requestId,
        verdict: value.verdict,
        challengeId: challenge.id,
        requestDigest: record.digest,
        policyVersion: record.decision.policyVersion,
        assertion,
      },
    });
    return c.json({
      status: result.status,
      approvals_given: result.approvalsGiven,
      approvals_needed: result.approvalsNeeded,
    });
  });

  // ---- suggested policies (issue 8) ---------------------------------------------------------
  const SUGGESTION_WINDOW_SECONDS = 30 * 86_400;
  const suggestionsFor = (c: Context, only?: string) =>
    computeSuggestions(ctx, deps.config, {
      sinceMs: windowParam(c.req.query('window'), SUGGESTION_WINDOW_SECONDS) * 1000,
      ...(only === undefined ? {} : { only }),
      ...(c.req.query('min_approvals')
        ? {
            minApprovals: Math.max(
              2,
              Math.min(1000, Number(c.req.query('min_approvals')) || SUGGESTION_MIN_APPROVALS),
            ),
          }
        : {}),
    });

  app.get('/v1/console/suggestions', async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    const items = await suggestionsFor(c);
    return c.json({
      admin_group: deps.config.policyAdminGroup,
      can_adopt: reviewer.groups.includes(deps.config.policyAdminGroup),
      policy_version: ctx.policy().version,
      items: items.map(suggestionView),
    });
  });

  /** Options for an admin's passkey assertion over one suggested policy's exact text. */
  app.post('/v1/console/suggestions/:id/adopt/options', jsonBodyLimit, async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    const { value } = await readJson(c, z.strictObject({ text_sha256: z.string().max(80) }));
    if (!reviewer.groups.includes(deps.config.policyAdminGroup))
      throw new CountersignError(
        'CS_NOT_ELIGIBLE',
        `only members of ${deps.config.policyAdminGroup} may adopt policies`,
      );
    const found = (await suggestionsFor(c, c.req.param('id'))).find((s) => s.policy.id === c.req.param('id'));
    if (!found)
      throw new CountersignError('CS_NOT_FOUND', 'no such suggestion (it may be adopted or no longer hold)');
    if (found.policy.textSha256 !== value.text_sha256)
      throw new CountersignError(
        'CS_POLICY_CHANGED',
        'the suggested text changed: reload it and read it again',
      );
    const expiresAt = ctx.clock.now() + CHALLENGE_TTL_SECONDS * 1000;
    return issueStepUp(
      c,
      {
        purpose: 'adopt_policy',
        reviewerId: reviewer.id,
        requestId: found.policy.id,
        verdict: null,
        expiresAt,
      },
      (nonce) =>
        adoptionChallenge({
          policyId: found.policy.id,
          textSha256: found.policy.textSha256,
          activeVersion: ctx.policy().version,
          reviewerId: reviewer.id,
          nonce,
          expiresAt,
        }),
    );
  });

  app.post('/v1/console/suggestions/:id/adopt', jsonBodyLimit, async (c) => {
    const { reviewer } = await requireReviewer(deps, c);
    const { value } = await readJson(
      c,
      z.strictObject({
        challenge_id: z.string().max(64),
        text_sha256: z.string().max(80),
        response: WebAuthnResponse,
      }),
    );
    const policyId = c.req.param('id');
    const challenge = await ctx.store.read((tx) => tx.getChallenge(value.challenge_id));
    if (
      challenge?.purpose !== 'adopt_policy' ||
      challenge.reviewerId !== reviewer.id ||
      challenge.requestId !== policyId
    )
      assertionInvalid('the challenge is unknown or for another policy');
    // The suggestion as it holds NOW: if its text or the active set changed since the options
    // were made, the assertion signs another value and fails.
    const found = (await suggestionsFor(c, policyId)).find((s) => s.policy.id === policyId);
    if (!found)
      throw new CountersignError('CS_NOT_FOUND', 'no such suggestion (it may be adopted or no longer hold)');
    const expectedAdoption = b64url(
      adoptionChallenge({
        policyId,
        textSha256: found.policy.textSha256,
        activeVersion: ctx.policy().version,
        reviewerId: reviewer.id,
        nonce: challenge.nonce,
        expiresAt: challenge.expiresAt,
      }),
    );
    const assertion = await verifyStepUp(reviewer.id, value.response, expectedAdoption);
    await adoptPolicy({
      ctx,
      input: {
        reviewer,
        adminGroup: deps.config.policyAdminGroup,
        challengeId: challenge.id,
        policyId,
        textSha256: found.policy.textSha256,
        evidence: {
          approvals: found.policy.approvals,
          reviews_spared: found.evidence.reviewsSpared,
          allows_denied: found.evidence.allowsDenied,
          replayed: found.evidence.replayed,
          previous_version: ctx.policy().version,
        },
        assertion,
      },
    });
    writeAdoptedPolicy(deps.config, found.policy);
    // Put in force here at once (the poll would within 2 s; other instances pick it up by
    // their own poll when the policy directory is shared). The reload is audited.
    const loaded = await deps.policies.reload();
    return c.json({ adopted: policyId, policy_version: loaded.version, file: `${policyId}.cedar` });
  });

  // ---- live updates -----------------------------------------------------------------------
  app.get('/v1/console/events', async (c) => {
    await requireReviewer(deps, c);
    return streamSSE(c, async (stream) => {
      const unsubscribe = deps.waiters.subscribe((requestId) => {
        void ctx.store
          .read((tx) => tx.getRequest(requestId))
          .then((r) => {
            if (r && r.deadlineAt !== null) {
              void stream.writeSSE({
                event: 'review',
                data: JSON.stringify({ request_id: r.id, status: r.status }),
              });
            }
          });
      });
      stream.onAbort(unsubscribe);
      await stream.writeSSE({ event: 'ready', data: '{}' });
      while (!stream.aborted) {
        await stream.sleep(15_000);
        await stream.writeSSE({ event: 'ping', data: '{}' });
      }
      unsubscribe();
    });
  });

  // ---- agents and audit -------------------------------------------------------------------
  app.get('/v1/console/agents', async (c) => {
    await requireReviewer(deps, c);
    const agents = await ctx.store.listAgents();
    return c.json({
      items: agents.map((a) => ({
        id: a.id,
        owner: a.owner,
        boundary: a.boundary,
        environment: a.environment,
        status: a.status,
        created_at: iso(a.createdAt),
        expires_at: a.expiresAt === null ? null : iso(a.expiresAt),
        last_seen_at: a.lastSeenAt === null ? null : iso(a.lastSeenAt),
      })),
    });
  });

  app.post('/v1/console/agents/:id/suspend', jsonBodyLimit, async (c: Context) => {
    const { reviewer } = await requireReviewer(deps, c);
    const { value } = await readJson(c, z.strictObject({ reason: z.string().min(1).max(1000) }));
    const result = await suspendAgent({
      ctx,
      actor: { type: 'reviewer', id: reviewer.id },
      input: { agentId: c.req.param('id')!, reason: value.reason },
    });
    const pending = await deps.reaper.revokeNow(result.pendingRevocations);
    return c.json({
      revoked_leases: result.revokedLeases,
      cancelled_requests: result.cancelledRequests,
      pending_revocations: pending,
    });
  });

  // ---- leases ------------------------------------------------------------------------------
  const LeaseQuery = z.strictObject({
    status: z.enum(['issuing', 'active', 'revoke_pending', 'revoked']).optional(),
    agent: z.string().min(1).max(512).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  });

  app.get('/v1/console/leases', async (c) => {
    await requireReviewer(deps, c);
    const parsed = LeaseQuery.safeParse(c.req.query());
    if (!parsed.success) throw new CountersignError('CS_INVALID_REQUEST', 'bad lease filter');
    const q = parsed.data;
    const [leases, failing] = await ctx.store.read(async (tx) => [
      await tx.listLeases(
        {
          ...(q.status ? { statuses: [q.status as LeaseStatus] } : {}),
          ...(q.agent ? { agentId: q.agent } : {}),
        },
        q.limit,
      ),
      await tx.countLeases({ status: 'revoke_pending', failing: true }),
    ]);
    const now = ctx.clock.now();
    return c.json({ items: leases.map((l) => leaseView(l, now)), failing_revocations: failing });
  });

  // Revoking only ever removes access: a live session and a same-origin request suffice (as
  // for suspension); the reason is recorded with the reviewer in the audit trail.
  app.post('/v1/console/leases/:id/revoke', jsonBodyLimit, async (c: Context) => {
    const { reviewer } = await requireReviewer(deps, c);
    const { value } = await readJson(c, z.strictObject({ reason: z.string().min(1).max(1000) }));
    const leaseId = c.req.param('id')!;
    const existing = await ctx.store.read((tx) => tx.getLease(leaseId));
    if (!existing) throw new CountersignError('CS_NOT_FOUND', 'no such lease');
    const ended = await revokeLease({
      ctx,
      actor: { type: 'reviewer', id: reviewer.id },
      input: { leaseId, reason: 'revoked_by_reviewer', note: value.reason },
    });
    if (ended?.status === 'revoke_pending') await deps.reaper.revokeNow([ended.id]);
    const after = (await ctx.store.read((tx) => tx.getLease(leaseId)))!;
    return c.json({ revoked: ended !== null, lease: leaseView(after, ctx.clock.now()) });
  });

  app.get('/v1/console/audit', async (c) => {
    await requireReviewer(deps, c);
    const events = [];
    for await (const e of ctx.store.auditEvents()) events.push(e);
    const result = verifyAuditChain(events);
    return c.json(
      result.ok
        ? { ok: true, count: result.count, head_hash: result.headHash }
        : {
            ok: false,
            count: result.count,
            seq: result.seq,
            event_id: result.eventId,
            reason: result.reason,
          },
    );
  });

  return app;
}
