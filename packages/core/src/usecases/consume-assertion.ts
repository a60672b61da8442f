import { CountersignError } from '../errors.js';
import type { StoreTx } from '../store-port.js';
import type { Assertion } from './context.js';

/**
 * One assertion, one use: every one-time id the call carries (a private-key assertion's
 * `jti`, a DPoP proof's `jti`) is recorded in the same unit of work as the effect, and the
 * throttled last-seen mark rides along in that unit too (no commit of its own).
 */
export async function consumeAssertion(
  tx: Pick<StoreTx, 'consumeTokenId' | 'touchAgent'>,
  assertion: Assertion,
): Promise<void> {
  for (const once of assertion.oneTimeIds) {
    if (!(await tx.consumeTokenId(once.namespace, once.id, once.expiresAt))) {
      throw new CountersignError(
        'CS_TOKEN_REPLAYED',
        once.namespace.startsWith('dpop:')
          ? 'this DPoP proof was already used (jti replay)'
          : 'this assertion was already used (jti replay)',
      );
    }
  }
  if (assertion.seenAt !== null) await tx.touchAgent(assertion.agentId, assertion.seenAt);
}
