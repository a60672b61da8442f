/**
 * Storing and re-wrapping sealed secrets: the store and audit half. The cryptography happens
 * before, in the server (node:crypto); these verbs commit what it produced with its audit
 * event in one unit of work, count every master-key encryption against its cap (THREATS.md
 * L4), and audit secrets by name, version and keyed fingerprint only (invariant 7).
 */
import type { AuditActor } from '../audit.js';
import { CountersignError } from '../errors.js';
import type { SealedSecretRecord } from '../records.js';
import type { DomainContext } from './context.js';

export async function putSealedSecret({
  ctx,
  input,
  actor,
}: {
  ctx: Pick<DomainContext, 'store' | 'clock'>;
  input: { record: SealedSecretRecord; expectedVersion: number | null; keyUseCap: number };
  actor: AuditActor;
}): Promise<SealedSecretRecord> {
  const { record } = input;
  const now = ctx.clock.now();
  await ctx.store.transaction(async (tx) => {
    if (!(await tx.reserveKeyUse(record.keyId, 1, input.keyUseCap, now))) {
      throw new CountersignError(
        'CS_KEY_USAGE_EXCEEDED',
        'the master key has wrapped as many data keys as it safely may: rotate it (countersign secret rotate-master-key)',
      );
    }
    if (!(await tx.putSealedSecret(record, input.expectedVersion))) {
      throw new CountersignError('CS_SECRET_EXISTS', `secret ${record.name} changed meanwhile; try again`);
    }
    await tx.appendAudit(
      {
        type: 'secret.put',
        actor,
        data: {
          name: record.name,
          version: record.version,
          fingerprint: record.fingerprint,
          key_id: record.keyId,
        },
      },
      now,
    );
  });
  return record;
}

export async function rewrapSealedSecrets({
  ctx,
  input,
  actor,
}: {
  ctx: Pick<DomainContext, 'store' | 'clock'>;
  input: {
    fromKeyId: string;
    toKeyId: string;
    rewrapped: ReadonlyArray<{ name: string; version: number; wrappedKey: string; wrapNonce: string }>;
    keyUseCap: number;
  };
  actor: AuditActor;
}): Promise<number> {
  const now = ctx.clock.now();
  return ctx.store.transaction(async (tx) => {
    if (!(await tx.reserveKeyUse(input.toKeyId, input.rewrapped.length, input.keyUseCap, now))) {
      throw new CountersignError('CS_KEY_USAGE_EXCEEDED', 'the new master key is past its usage cap');
    }
    for (const r of input.rewrapped) {
      const ok = await tx.rewrapSealedSecret(
        r.name,
        r.version,
        input.fromKeyId,
        { keyId: input.toKeyId, wrappedKey: r.wrappedKey, wrapNonce: r.wrapNonce },
        now,
      );
      // Everything or nothing: a secret that changed meanwhile fails the whole rotation.
      if (!ok)
        throw new CountersignError('CS_SECRET_EXISTS', `secret ${r.name} changed meanwhile; run it again`);
    }
    await tx.appendAudit(
      {
        type: 'secret.master_key_rotated',
        actor,
        data: { from_key_id: input.fromKeyId, to_key_id: input.toKeyId, rewrapped: input.rewrapped.length },
      },
      now,
    );
    return input.rewrapped.length;
  });
}
