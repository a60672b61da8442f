/**
 * A runnable example agent built on @countersign/sdk.
 *
 *   npm start                                   # a dev server on http://localhost:8787
 *   node packages/cli/bin/countersign.cjs agent add invoice-bot --owner billing --dir .countersign
 *   COUNTERSIGN_AGENT_ID=invoice-bot \
 *   COUNTERSIGN_AGENT_KEY=.countersign/agents/invoice-bot.jwk \
 *     node --import tsx examples/agent/invoice-bot.ts
 *
 * Identity, one of:
 *   COUNTERSIGN_AGENT_ID + COUNTERSIGN_AGENT_KEY  a registered Ed25519 key (private-key JWT)
 *   COUNTERSIGN_TOKEN_FILE                        a platform token file, re-read on every call
 *                                                 (Kubernetes projected token, SPIFFE JWT-SVID)
 * Options:
 *   COUNTERSIGN_URL    server URL (default http://localhost:8787)
 *   COUNTERSIGN_DPOP=1 bind every lease to a fresh DPoP key (RFC 9449)
 *   COUNTERSIGN_WAIT   seconds to wait for a human review (default 300)
 */
import { readFileSync } from 'node:fs';
import { AccessRequestTimeoutError, CountersignClient, type TokenSource } from '@countersign/sdk';
import { tokenFileSource } from '@countersign/sdk/node';
import { LeaseVerifier } from '@countersign/sdk/verify';

const server = process.env.COUNTERSIGN_URL ?? 'http://localhost:8787';
const waitSeconds = Number(process.env.COUNTERSIGN_WAIT ?? 300);
const task = `invoices-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 8)}`;

function identity(): { tokenSource: TokenSource } | { agentId: string; privateJwk: Record<string, string> } {
  if (process.env.COUNTERSIGN_TOKEN_FILE)
    return { tokenSource: tokenFileSource(process.env.COUNTERSIGN_TOKEN_FILE) };
  const agentId = process.env.COUNTERSIGN_AGENT_ID;
  const keyFile = process.env.COUNTERSIGN_AGENT_KEY;
  if (!agentId || !keyFile)
    throw new Error('set COUNTERSIGN_TOKEN_FILE, or COUNTERSIGN_AGENT_ID and COUNTERSIGN_AGENT_KEY');
  const { agent_id: _id, ...privateJwk } = JSON.parse(readFileSync(keyFile, 'utf8'));
  return { agentId, privateJwk };
}

const client = new CountersignClient({ server, ...identity(), dpop: process.env.COUNTERSIGN_DPOP === '1' });

// 1. A routine read: policy allows it at once and the lease comes back in the answer.
const read = await client.requestAccess({
  action: 'read',
  resource: 'postgres://staging/app/orders',
  intent: { purpose: 'Reconcile yesterday’s orders against invoices', task_id: task },
});
console.log(`read: ${read.status}${read.status === 'allowed' ? '' : ` (${read.reason})`}`);

if (read.status === 'allowed' && read.credential) {
  // What the resource server does with the lease (here, in-process, for show).
  const url = 'https://orders.acme.dev/v1/orders';
  const headers = await client.leaseHeaders(read.credential, 'GET', url);
  const issuer = await client.audience();
  const verified = await new LeaseVerifier({ issuer, audience: 'postgres://staging/app' }).verifyRequest(
    new Request(url, { headers }),
    { action: 'read', resource: 'postgres://staging/app/orders' },
  );
  console.log(
    `  lease ${verified.leaseId} verified by the resource server (${verified.jkt ? 'DPoP-bound' : 'bearer'})`,
  );
}

// 2. A production write: policy sends it to a person; this waits for their passkey decision.
try {
  const write = await client.requestAccess(
    {
      action: 'write',
      resource: 'postgres://prod/billing/invoices',
      intent: { purpose: 'Apply the credit note for BILL-1234', task_id: task, ticket: 'BILL-1234' },
    },
    {
      timeoutMs: waitSeconds * 1000,
      onPending: (r) => console.log(`write: pending review by ${r.review?.reviewer_group} (request ${r.id})`),
    },
  );
  console.log(
    `write: ${write.status}${write.status === 'allowed' ? `, lease ${write.leaseId}` : ` (${write.reason})`}`,
  );
} catch (error) {
  if (!(error instanceof AccessRequestTimeoutError)) throw error;
  console.log(`write: no decision within ${waitSeconds}s; withdrawing ${error.requestId}`);
  await client.withdraw(error.requestId);
}

// 3. Done: completing the task revokes every lease it still holds.
const done = await client.completeTask(task);
console.log(`task ${task} completed: ${done.revoked_leases.length} lease(s) revoked`);
