import { SYSTEM } from './audit-helpers.js';
import type { DomainContext } from './context.js';

/**
 * Records which policy set an instance runs (or that it failed to load one), so every
 * decision's `policy_version` can be traced to a load event in the chain.
 */
export async function recordPolicyLoad({
  ctx,
  input,
}: {
  ctx: DomainContext;
  input: { version: string; policyCount: number | null; error: string | null };
}): Promise<void> {
  const now = ctx.clock.now();
  await ctx.store.transaction((tx) =>
    tx.appendAudit(
      {
        type: input.error === null ? 'policy.loaded' : 'policy.load_failed',
        actor: SYSTEM,
        data: { policy_version: input.version, policy_count: input.policyCount, error: input.error },
      },
      now,
    ),
  );
}
