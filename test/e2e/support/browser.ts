/**
 * Real Chromium (Debian's), driven by playwright-core, with a CDP virtual authenticator that
 * does user verification: real WebAuthn ceremonies, real signatures, nothing mocked.
 */
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

// These run inside the page (page.evaluate), where the DOM exists; the repo compiles without DOM types.
// biome-ignore lint/suspicious/noExplicitAny: browser globals, typed by the browser
declare const navigator: any;
// biome-ignore lint/suspicious/noExplicitAny: browser globals, typed by the browser
declare const PublicKeyCredential: any;
// biome-ignore lint/suspicious/noExplicitAny: browser globals, typed by the browser
type PublicKeyCredential = any;

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export interface ReviewerSession {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly authenticatorId: string;
  /** POST/GET JSON from inside the page (same origin, the session cookie rides along). */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Runs navigator.credentials.get over server-made options; returns the JSON response. */
  assert(options: unknown): Promise<Record<string, unknown>>;
  /** Enrolls with an invite token through the API (no UI). */
  enroll(token: string): Promise<{ status: number; body: any }>;
  login(): Promise<{ status: number; body: any }>;
  /** One whole decision: options, assertion, vote. */
  decide(requestId: string, verdict: 'approve' | 'deny'): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function newReviewerSession(browser: Browser, baseUrl: string): Promise<ReviewerSession> {
  const context = await browser.newContext({ baseURL: baseUrl });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await page.goto(`${baseUrl}/healthz/live`);

  const session: ReviewerSession = {
    context,
    page,
    authenticatorId,
    api: (method, path, body) =>
      page.evaluate(
        async ({ method, path, body }) => {
          const res = await fetch(path, {
            method,
            headers: body === undefined ? {} : { 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          const text = await res.text();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {}
          return { status: res.status, body: parsed };
        },
        { method, path, body },
      ),
    assert: (options) =>
      page.evaluate(async (options) => {
        const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options as never);
        const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential;
        return credential.toJSON() as Record<string, unknown>;
      }, options),
    async enroll(token) {
      const start = await session.api('POST', '/v1/console/enroll/options', { token });
      if (start.status !== 200) return start;
      const response = await page.evaluate(async (options) => {
        const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options as never);
        const credential = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential;
        return credential.toJSON();
      }, start.body.options);
      return session.api('POST', '/v1/console/enroll/verify', {
        token,
        challenge_id: start.body.challenge_id,
        response,
      });
    },
    async login() {
      const start = await session.api('POST', '/v1/console/login/options', {});
      const response = await session.assert(start.body.options);
      return session.api('POST', '/v1/console/login/verify', { login_id: start.body.login_id, response });
    },
    async decide(requestId, verdict) {
      const start = await session.api('POST', `/v1/console/requests/${requestId}/decision/options`, {
        verdict,
      });
      if (start.status !== 200) return start;
      const response = await session.assert(start.body.options);
      return session.api('POST', `/v1/console/requests/${requestId}/decision`, {
        verdict,
        challenge_id: start.body.challenge_id,
        response,
      });
    },
    close: () => context.close(),
  };
  return session;
}
