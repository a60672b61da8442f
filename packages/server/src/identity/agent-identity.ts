/**
 * The one agent authenticator: picks the verifier by the token's `iss`, then applies the
 * checks every method shares (agent status and expiry, DPoP proof of possession, last-seen).
 *
 * The `iss` is read from the UNVERIFIED payload only to choose which verifier runs; that
 * verifier then checks everything, `iss` included, against its own configuration. An `iss`
 * that is a URL and not a configured trusted issuer is refused (our own lease tokens among
 * them); anything else is a private-key assertion (`iss` = `sub` = a registered agent id,
 * which is a slug or a spiffe:// URI, never an http(s) URL).
 */
import { type Clock, CountersignError } from '@countersign/core';
import { decodeJwt } from 'jose';
import type {
  AgentAuthenticator,
  AgentCall,
  AuthenticatedAgent,
  TokenVerifier,
  VerifiedWorkload,
} from './authenticator.js';
import { type VerifiedDpopProof, verifyDpopProof } from './dpop.js';
import type { FederatedVerifier, IssuerHealth } from './federated.js';

/** Last-seen is written at most this often per agent, inside a unit of work the call commits anyway. */
export const LAST_SEEN_INTERVAL_MS = 60_000;
const MAX_TRACKED_AGENTS = 100_000;

export interface AgentIdentityOptions {
  readonly clock: Clock;
  readonly privateKeyJwt: TokenVerifier;
  readonly federated: readonly FederatedVerifier[];
}

export class AgentIdentity implements AgentAuthenticator {
  readonly #options: AgentIdentityOptions;
  readonly #byIssuer: ReadonlyMap<string, FederatedVerifier>;
  readonly #seenMarked = new Map<string, number>();

  constructor(options: AgentIdentityOptions) {
    this.#options = options;
    this.#byIssuer = new Map(options.federated.map((v) => [v.issuer, v]));
  }

  /** Key availability per trusted issuer, for /healthz. */
  health(): IssuerHealth[] {
    return this.#options.federated.map((v) => v.health());
  }

  async prefetch(): Promise<void> {
    await Promise.all(this.#options.federated.map((v) => v.prefetch()));
  }

  #verifierFor(token: string): TokenVerifier {
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      // Not a JWT at all: the private-key verifier refuses it with its own precise reason.
      return this.#options.privateKeyJwt;
    }
    if (typeof iss === 'string') {
      const federated = this.#byIssuer.get(iss);
      if (federated) return federated;
      if (/^https?:\/\//i.test(iss)) {
        throw new CountersignError(
          'CS_ISSUER_UNTRUSTED',
          'the token issuer is not a configured trusted issuer',
        );
      }
    }
    return this.#options.privateKeyJwt;
  }

  #seenAt(agentId: string, now: number): number | null {
    const last = this.#seenMarked.get(agentId);
    if (last !== undefined && now - last < LAST_SEEN_INTERVAL_MS && now >= last) return null;
    if (this.#seenMarked.size >= MAX_TRACKED_AGENTS) this.#seenMarked.clear();
    this.#seenMarked.set(agentId, now);
    return now;
  }

  async authenticate(call: AgentCall): Promise<AuthenticatedAgent> {
    const verified: VerifiedWorkload = await this.#verifierFor(call.token).verify(call.token);
    const { agent } = verified;
    const now = this.#options.clock.now();
    if (agent.status !== 'active') throw new CountersignError('CS_AGENT_SUSPENDED', 'agent is suspended');
    if (agent.expiresAt !== null && agent.expiresAt <= now)
      throw new CountersignError('CS_AGENT_EXPIRED', 'agent registration has expired');

    let proof: VerifiedDpopProof | null = null;
    if (call.dpop !== null) {
      proof = await verifyDpopProof({
        proof: call.dpop,
        method: call.method,
        url: call.url,
        accessToken: call.token,
        now,
        expectedJkt: verified.boundJkt,
      });
    } else if (verified.boundJkt !== null) {
      // RFC 9449 §7.1: a DPoP-bound token is useless without a proof from its key (B8).
      throw new CountersignError('CS_DPOP_REQUIRED', 'this token is DPoP-bound: send a DPoP proof');
    } else if (verified.requireDpop) {
      throw new CountersignError('CS_DPOP_REQUIRED', 'this issuer requires a DPoP proof with every call');
    }
    return {
      agent,
      method: verified.method,
      assertion: {
        agentId: agent.id,
        oneTimeIds: proof ? [...verified.oneTimeIds, proof.oneTimeId] : verified.oneTimeIds,
        seenAt: this.#seenAt(agent.id, now),
        dpopJkt: proof?.jkt ?? null,
      },
    };
  }
}
