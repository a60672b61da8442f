import { type ChainVerification, CountersignError, verifyAuditChain } from '@countersign/core';
import { openLocal } from '../local.js';

/**
 * Verifies the chain. `expectHead` (`<seq>:<hash>`, as printed by an earlier run and kept
 * elsewhere) also catches removal of the newest events, which a chain alone cannot show.
 */
export async function auditVerify(home: string, expectHead?: string): Promise<ChainVerification> {
  let head: { seq: number; hash: string } | undefined;
  if (expectHead !== undefined) {
    const m = /^([1-9][0-9]*):([0-9a-f]{64})$/.exec(expectHead);
    if (!m) throw new CountersignError('CS_INVALID_REQUEST', '--expect-head must be <seq>:<64 hex digits>');
    head = { seq: Number(m[1]), hash: m[2]! };
  }
  const local = await openLocal(home);
  try {
    const events = [];
    for await (const event of local.deps.ctx.store.auditEvents()) events.push(event);
    return verifyAuditChain(events, head);
  } finally {
    await local.close();
  }
}
