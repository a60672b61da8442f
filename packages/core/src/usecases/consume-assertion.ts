import { CountersignError } from '../errors.js';
import type { StoreTx } from '../store-port.js';
import type { Assertion } from './context.js';

/** One assertion, one use: the `jti` is recorded in the same unit of work as the effect. */
export async function consumeAssertion(
  tx: Pick<StoreTx, 'consumeTokenId'>,
  assertion: Assertion,
): Promise<void> {
  if (!(await tx.consumeTokenId(assertion.issuer, assertion.tokenId, assertion.expiresAt))) {
    throw new CountersignError('CS_TOKEN_REPLAYED', 'this assertion was already used (jti replay)');
  }
}
