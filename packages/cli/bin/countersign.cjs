#!/usr/bin/env node
// The `countersign` command. CommonJS on purpose: it runs before Node's ESM loader has read a
// file asynchronously, which is the last moment libuv's thread pool can still be sized.
//
// The pool runs WebCrypto's signatures (the agent assertion's verification and the access
// token's signing: two per auto-allow). Node's default of 4 threads on a 2-core machine lets
// the pool, the SQLite writer thread and the event loop preempt one another; one thread per
// core measured allow +25% and deny +40% in req/s (bench/README.md, "Thread pool"). Between 2
// and Node's default of 4: availableParallelism() may not see a container's CPU quota. An
// operator's own UV_THREADPOOL_SIZE always wins.
const { availableParallelism } = require('node:os');

if (!process.env.UV_THREADPOOL_SIZE) {
  process.env.UV_THREADPOOL_SIZE = String(Math.min(4, Math.max(2, availableParallelism())));
}
import('./countersign.js').catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
