/** The relying party: our origin and RP ID come from the configured issuer URL, never from request headers. */
import type { ServerDeps } from '../app.js';

export interface RelyingParty {
  readonly name: string;
  readonly id: string;
  readonly origin: string;
}

export function relyingParty(deps: Pick<ServerDeps, 'config'>): RelyingParty {
  const url = new URL(deps.config.issuer);
  return { name: 'Countersign', id: url.hostname, origin: url.origin };
}

/** How long a WebAuthn challenge may be answered. */
export const CHALLENGE_TTL_SECONDS = 300;
