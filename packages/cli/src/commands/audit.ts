import { type ChainVerification, verifyAuditChain } from '@countersign/core';
import { openLocal } from '../local.js';

export async function auditVerify(home: string): Promise<ChainVerification> {
  const local = await openLocal(home);
  try {
    const events = [];
    for await (const event of local.deps.ctx.store.auditEvents()) events.push(event);
    return verifyAuditChain(events);
  } finally {
    await local.close();
  }
}
