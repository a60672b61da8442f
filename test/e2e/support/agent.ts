import { registerAgent } from '@countersign/core';
import { CountersignClient } from '@countersign/sdk';
import { calculateJwkThumbprint } from 'jose';
import { newKeyPair } from '../../support/harness.js';
import type { LiveServer } from './live-server.js';

/** Registers an agent and returns an SDK client acting as it over real HTTP. */
export async function liveAgent(
  live: LiveServer,
  id: string,
  attrs: { owner?: string; boundary?: string } = {},
) {
  const { privateJwk, publicJwk } = await newKeyPair();
  await registerAgent({
    ctx: live.server.deps.ctx,
    actor: { type: 'operator', id: 'test' },
    input: {
      id,
      owner: attrs.owner ?? 'app',
      boundary: attrs.boundary ?? 'acme',
      environment: 'production',
      publicJwk,
      jwkThumbprint: await calculateJwkThumbprint(publicJwk),
    },
  });
  return new CountersignClient({ server: live.url, agentId: id, privateJwk });
}

export const PROD_WRITE = {
  action: 'write',
  resource: 'postgres://prod/billing/invoices',
  intent: { purpose: 'Apply the credit note for BILL-1234', task_id: 'task-review', ticket: 'BILL-1234' },
} as const;
