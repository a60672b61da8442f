/**
 * Drives whole decisions in-process (app.request, 50 in flight) for a CPU profile:
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/micro/drive.ts [allow|deny|review] [n]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig } from '@countersign/server';
import { initHome } from '../../packages/cli/src/commands/init.ts';
import { AssertionPool, registerBenchAgent } from '../lib/assertions.js';
import { disablePendingCap } from '../lib/server.ts';

const which = (process.argv[2] ?? 'allow') as 'allow' | 'deny' | 'review';
const n = Number(process.argv[3] ?? 20_000);
const intent = { purpose: 'bench', task_id: 't1' };
const BODIES = {
  allow: { action: 'read', resource: 'postgres://staging/app/orders', intent },
  deny: { action: 'export', resource: 'secret://kms/prod-signing-key', intent },
  review: { action: 'write', resource: 'postgres://prod/billing/invoices', intent },
};
const bodyText = JSON.stringify(BODIES[which]);
const home = mkdtempSync(join(tmpdir(), 'countersign-drive-'));
await initHome({ home, dev: true });
disablePendingCap(home);
const server = await createServer(loadConfig({ home, port: 8787, issuer: 'http://localhost:8787' }), {
  logLevel: 'silent',
});
const pool = new AssertionPool(await registerBenchAgent(server.deps.ctx), 'http://localhost:8787');
pool.fill(n + 2000);
const expected = { allow: 'allowed', deny: 'denied', review: 'pending' }[which];
const call = async () => {
  const res = await server.app.request('/v1/access-requests', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${pool.next()}` },
    body: bodyText,
  });
  if (res.status !== 201) throw new Error(`status ${res.status}: ${await res.text()}`);
  const json = (await res.json()) as { status: string };
  if (json.status !== expected) throw new Error(`expected ${expected}, got ${json.status}`);
};
async function run(count: number) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
}
/** CPU seconds of this process's main thread (the event loop), from /proc (Linux). */
function mainThreadCpu(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks
}
/** CPU seconds per thread name (comm) of this process, from /proc (Linux). */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/self/task`)) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name =
        tid === String(process.pid)
          ? 'main'
          : `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}/${tid}`;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended between listing and reading
    }
  }
  return out;
}
await run(2000);
// DRIVE_PROFILE=<file.cpuprofile>: a V8 CPU profile of the measured run only (no start-up).
const profileFile = process.env.DRIVE_PROFILE;
const inspector = profileFile ? new (await import('node:inspector/promises')).Session() : null;
if (inspector) {
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.start');
}
const threads0 = threadCpu();
const main0 = mainThreadCpu();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(n);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const mainUs = ((mainThreadCpu() - main0) * 1e6) / n;
const threads1 = threadCpu();
const perThread = [...threads1]
  .map(([name, sec]) => [name, ((sec - (threads0.get(name) ?? 0)) * 1e6) / n] as const)
  .filter(([, us]) => us >= 1)
  .sort((a, b) => b[1] - a[1])
  .map(([name, us]) => `${name} ${us.toFixed(0)}`)
  .join(', ');
if (inspector && profileFile) {
  const { profile } = await inspector.post('Profiler.stop');
  (await import('node:fs')).writeFileSync(profileFile, JSON.stringify(profile));
}
console.log(
  `${which}: ${n} in ${ms.toFixed(0)} ms = ${((n / ms) * 1000).toFixed(0)}/s; process CPU ${((cpu.user + cpu.system) / n).toFixed(0)} us/op (user ${(cpu.user / n).toFixed(0)}, sys ${(cpu.system / n).toFixed(0)}); main thread ${mainUs.toFixed(0)} us/op\n  per thread (us/op): ${perThread}`,
);
await server.close();
rmSync(home, { recursive: true, force: true });
