/**
 * Real `countersign serve` processes for several-instance tests: one data directory (config,
 * policies, signing key: what every instance must share) and one database, several ports.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '../e2e/support/live-server.js';

export const BIN = resolve(import.meta.dirname, '../../packages/cli/bin/countersign.cjs');

export { freePort };

/** Runs a CLI command to completion. */
export function cli(home: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, COUNTERSIGN_HOME: home, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a CLI command without blocking the event loop (several can run at once). */
export function cliAsync(
  home: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, COUNTERSIGN_HOME: home, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('exit', (code) => ok({ code, stdout, stderr }));
  });
}

export interface Instance {
  readonly name: string;
  readonly port: number;
  /** http://localhost:<port> */
  readonly url: string;
  readonly child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts `countersign serve` on a free port. `issuer` is the one external URL every instance
 * shares (behind a load balancer agents sign for that, not for an instance's own address).
 */
export async function startInstance(options: {
  name: string;
  home: string;
  issuer: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<Instance> {
  const port = await freePort();
  let output = '';
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--issuer', options.issuer],
    {
      env: { ...process.env, COUNTERSIGN_HOME: options.home, COUNTERSIGN_LOG_LEVEL: 'info', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${options.name} exited:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not become ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return {
    name: options.name,
    port,
    url,
    child,
    log: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
