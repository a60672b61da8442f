/**
 * `countersign lease list|revoke`: leases on the local data directory. A revoke ends the lease
 * at once and carries out its downstream revocation (drops a database role) right away; what
 * the downstream does not confirm stays `revoke_pending` and the server's reaper retries it.
 */
import { CountersignError, type LeaseStatus, revokeLease } from '@countersign/core';
import { leaseView } from '@countersign/server';
import { openLocal } from '../local.js';

const OPERATOR = { type: 'operator' as const, id: process.env.USER ?? 'operator' };
const STATUSES: readonly LeaseStatus[] = ['issuing', 'active', 'revoke_pending', 'revoked'];

export type LeaseView = ReturnType<typeof leaseView>;

export async function leaseList(
  home: string,
  filter: { agent?: string; task?: string; status?: string[]; limit?: number },
): Promise<LeaseView[]> {
  for (const s of filter.status ?? []) {
    if (!STATUSES.includes(s as LeaseStatus)) {
      throw new CountersignError('CS_INVALID_REQUEST', `--status must be one of ${STATUSES.join(', ')}`);
    }
  }
  const local = await openLocal(home);
  try {
    const ctx = local.deps.ctx;
    const leases = await ctx.store.read((tx) =>
      tx.listLeases(
        {
          ...(filter.agent ? { agentId: filter.agent } : {}),
          ...(filter.task ? { taskId: filter.task } : {}),
          ...(filter.status?.length ? { statuses: filter.status as LeaseStatus[] } : {}),
        },
        filter.limit ?? 100,
      ),
    );
    return leases.map((l) => leaseView(l, ctx.clock.now()));
  } finally {
    await local.close();
  }
}

export async function leaseRevoke(
  home: string,
  leaseId: string,
  note?: string,
): Promise<{ outcome: 'revoked' | 'revoke_pending' | 'not_live'; lease: LeaseView | null }> {
  const local = await openLocal(home);
  try {
    const ctx = local.deps.ctx;
    const ended = await revokeLease({
      ctx,
      actor: OPERATOR,
      input: { leaseId, reason: 'revoked_by_admin', ...(note ? { note } : {}) },
    });
    if (!ended) {
      const lease = await ctx.store.read((tx) => tx.getLease(leaseId));
      if (!lease) throw new CountersignError('CS_NOT_FOUND', `no lease ${leaseId}`);
      return { outcome: 'not_live', lease: leaseView(lease, ctx.clock.now()) };
    }
    if (ended.status === 'revoke_pending') await local.deps.reaper.revokeNow([ended.id]);
    const after = (await ctx.store.read((tx) => tx.getLease(leaseId)))!;
    return {
      outcome: after.status === 'revoked' ? 'revoked' : 'revoke_pending',
      lease: leaseView(after, ctx.clock.now()),
    };
  } finally {
    await local.close();
  }
}
