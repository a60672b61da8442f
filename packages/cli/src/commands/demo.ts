/**
 * `npm run demo`: a scripted agent against a running server, showing the three outcomes,
 * then the credential verified against the JWKS, introspected, and killed by task completion.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CountersignClient } from '@countersign/sdk';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { agentAdd, keyFileName, readAgentKey } from './agent.js';

const DEMO_AGENT = 'spiffe://acme.dev/agent/demo-invoice-bot';

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export async function demoCommand(options: { home: string; server: string }): Promise<number> {
  const keyFile = join(options.home, 'agents', keyFileName(DEMO_AGENT));
  if (!existsSync(keyFile)) {
    await agentAdd({
      home: options.home,
      id: DEMO_AGENT,
      owner: 'billing',
      boundary: 'acme',
      env: 'production',
    });
    say(`registered demo agent ${DEMO_AGENT} (owner billing, boundary acme); key in ${keyFile}`);
  }
  const { privateJwk } = readAgentKey(keyFile);
  const client = new CountersignClient({ server: options.server, agentId: DEMO_AGENT, privateJwk });
  const task = `demo-${Date.now()}`;

  say('\n1) routine read of internal staging data');
  const read = await client.submitAccessRequest({
    action: 'read',
    resource: 'postgres://staging/app/orders',
    intent: { purpose: 'Reconcile yesterday’s orders against invoices', task_id: task },
  });
  say(
    `   status: ${read.status}   policies: ${read.decision.determining_policies.map((p: { id: string }) => p.id).join(', ')}`,
  );
  say(
    `   risk ${read.decision.risk.score}; lease ${read.credential?.lease_id ?? '-'} expires ${read.credential?.expires_at ?? '-'}`,
  );
  if (read.credential?.type !== 'access_token') {
    say(
      `   expected an allowed read with a credential, got ${read.status}: is the server using the example policies?`,
    );
    return 1;
  }
  const token = read.credential.access_token;
  say(`   access token: ${token.slice(0, 32)}…(${token.length} chars)`);
  const jwks = createRemoteJWKSet(new URL(`${options.server}/.well-known/jwks.json`));
  const { payload } = await jwtVerify(token, jwks, { typ: 'at+jwt' });
  say(
    `   verified against the JWKS: sub=${payload.sub} aud=${payload.aud} exp=${new Date(payload.exp! * 1000).toISOString()}`,
  );
  say(`   introspection: active=${(await client.introspect(token)).active}`);

  say('\n2) export of the production signing key (owned by team security)');
  const exp = await client.submitAccessRequest({
    action: 'export',
    resource: 'secret://kms/prod-signing-key',
    intent: { purpose: 'Back up the signing key', task_id: task },
  });
  say(`   status: ${exp.status}`);
  for (const reason of exp.decision.reasons) say(`   reason: ${reason}`);

  say('\n3) production write to billing invoices');
  const write = await client.submitAccessRequest({
    action: 'write',
    resource: 'postgres://prod/billing/invoices',
    // Its own task, so that it stays pending for a reviewer after the read task completes.
    intent: {
      purpose: 'Apply the credit note for ticket BILL-1234',
      task_id: `${task}-credit-note`,
      ticket: 'BILL-1234',
    },
  });
  say(
    `   status: ${write.status}   review by: ${write.review?.reviewer_group}   deadline: ${write.review?.deadline_at}`,
  );
  say(`   request id: ${write.id}`);
  say(`   digest a reviewer approves: ${write.decision.request_digest}`);
  say('   (it waits for a person: `npx countersign reviewer invite you@acme.dev --group billing-oncall`)');

  say(`\n4) task ${task} complete: its leases die`);
  const done = await client.completeTask(task);
  say(`   revoked leases: ${done.revoked_leases.join(', ') || '(none)'}`);
  say(`   introspection of the read token now: active=${(await client.introspect(token)).active}`);
  say('\nEvery step above is in the audit chain: `npx countersign audit verify`.');
  return read.status === 'allowed' && exp.status === 'denied' && write.status === 'pending' ? 0 : 1;
}
