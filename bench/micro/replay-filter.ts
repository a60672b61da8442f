/**
 * Micro-benchmark: the product's PrivateKeyJwtAuthenticator (real jose verification, stub
 * store) fed one fresh assertion after another, 50 in flight, past 100,000 live jtis. Its
 * in-memory replay filter used to scan the whole map on every new jti once it held more than
 * 100,000 entries (nothing expires inside one assertion lifetime): ~1.7 ms per authentication
 * instead of ~0.15 ms, measured here before cdf527e. Since cdf527e it evicts from the oldest
 * and caps the size; this script is the regression check: the last block must stay flat.
 *
 *   node --import tsx bench/micro/replay-filter.ts [total=104000] [block=4000]
 */
import { generateKeyPairSync } from 'node:crypto';
import type { AgentRecord, Store } from '@countersign/core';
import { PrivateKeyJwtAuthenticator } from '@countersign/server';
import { exportJWK } from 'jose';
import { AssertionPool } from '../lib/assertions.js';

const TOTAL = Number(process.argv[2] ?? 104_000);
const BLOCK = Number(process.argv[3] ?? 4_000);
const audience = 'http://localhost:8787';
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const jwk = await exportJWK(publicKey);
const agent: AgentRecord = {
  id: 'bench-agent',
  owner: 'billing',
  boundary: 'acme',
  environment: 'production',
  trustTier: 'standard',
  status: 'active',
  publicJwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x! },
  jwkThumbprint: 'bench',
  expiresAt: null,
  lastSeenAt: null,
  createdAt: 0,
};
const store = {
  read: async (work: (tx: unknown) => unknown) => work({ getAgent: async () => agent }),
} as unknown as Store;
const auth = new PrivateKeyJwtAuthenticator({ store, clock: { now: () => Date.now() }, audience });
const pool = new AssertionPool({ agentId: agent.id, key: privateKey }, audience, 300);
pool.fill(TOTAL);

console.log(`authentications  µs each (mean over the block)`);
const t0 = performance.now();
for (let done = 0; done < TOTAL; ) {
  const start = performance.now();
  const n = Math.min(BLOCK, TOTAL - done);
  // 50 in flight, as under load.
  let left = n;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (left > 0) {
        left--;
        await auth.verify(pool.next());
      }
    }),
  );
  done += n;
  const us = ((performance.now() - start) * 1000) / n;
  console.log(`${String(done).padStart(15)}  ${us.toFixed(0).padStart(8)}`);
  if (performance.now() - t0 > 280_000) {
    console.log('stopping: assertions would start to expire');
    break;
  }
}
