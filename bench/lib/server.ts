/**
 * The server under test, in its own process (its own core): `countersign serve --dev` on a
 * fresh data dir, plus a reader of its per-thread CPU time from /proc (Linux only).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO = resolve(import.meta.dirname, '..', '..');
const CLI = join(REPO, 'packages', 'cli', 'bin', 'countersign.cjs');

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

/** `countersign init --dev` then `agent add`; returns the agent's private key file. */
/** One agent opens thousands of reviews in a bench: the per-agent pending cap (E1) would refuse them. */
export function disablePendingCap(home: string): void {
  const configFile = join(home, 'countersign.yaml');
  writeFileSync(
    configFile,
    readFileSync(configFile, 'utf8').replace(/max_pending_per_agent: \d+/, 'max_pending_per_agent: null'),
  );
}

export async function prepareHome(home: string, agentId: string, owner: string): Promise<string> {
  await run(process.execPath, [CLI, 'init', '--dev', '--dir', home], { cwd: REPO });
  disablePendingCap(home);
  const { stdout, stderr } = await run(
    process.execPath,
    [CLI, 'agent', 'add', agentId, '--owner', owner, '--dir', home],
    { cwd: REPO },
  );
  const printed = `${stdout}\n${stderr}`.match(/(\/\S+\.jwk)\b/)?.[1];
  const file = printed && existsSync(printed) ? printed : join(home, 'agents', `${agentId}.jwk`);
  if (!existsSync(file)) throw new Error(`agent key file not found (agent add said: ${stdout} ${stderr})`);
  return file;
}

export interface RunningServer {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly base: string;
  stop(): Promise<void>;
}

export async function startServer(options: {
  home: string;
  port: number;
  logFile: string;
  nodeFlags?: string[];
  env?: Record<string, string>;
  /** Start the server at this nice value (every thread inherits it). */
  nice?: number | null;
  /** The external URL agents sign for (instances behind one balancer share it). */
  issuer?: string;
}): Promise<RunningServer> {
  const log = createWriteStream(options.logFile);
  const nice = options.nice ?? null;
  const child = spawn(
    nice === null ? process.execPath : 'nice',
    [
      ...(nice === null ? [] : ['-n', String(nice), process.execPath]),
      ...(options.nodeFlags ?? []),
      CLI,
      'serve',
      '--dir',
      options.home,
      '--port',
      String(options.port),
      '--host',
      '127.0.0.1',
      '--dev',
      ...(options.issuer ? ['--issuer', options.issuer] : []),
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const killNow = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  // Never leave the server behind, whatever happens to this process.
  process.once('exit', killNow);

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(killNow, 15_000);
    await exited;
    clearTimeout(timer);
    process.removeListener('exit', killNow);
  };

  const base = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`server exited with ${child.exitCode}; see ${options.logFile}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
      if (res.status === 503) throw new Error(`server is unready: ${await res.text()}`);
    } catch (error) {
      if ((error as Error).message.startsWith('server is unready')) {
        await stop();
        throw error;
      }
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`server did not become ready in 60 s; see ${options.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, pid: child.pid!, base, stop };
}

/**
 * CPU seconds of a process: the main thread (the event loop: all JS, SQLite, fsync waits are
 * not CPU) and every other thread (V8 GC and compiler helpers, the libuv threadpool that runs
 * WebCrypto jobs). Node 20 names every thread "node", so they cannot be told apart further.
 */
export interface ThreadCpu {
  readonly main: number;
  readonly others: number;
}

const TICKS = 100; // USER_HZ on Linux

export function threadCpu(pid: number): ThreadCpu | null {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return null;
  const out = { main: 0, others: 0 };
  for (const tid of readdirSync(dir)) {
    try {
      const stat = readFileSync(`${dir}/${tid}/stat`, 'utf8');
      // Fields after the ")" that closes comm start at field 3 (state); utime is 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / TICKS;
      if (tid === String(pid)) out.main += seconds;
      else out.others += seconds;
    } catch {
      // The thread ended between readdir and read.
    }
  }
  return out;
}

export function cpuDelta(a: ThreadCpu | null, b: ThreadCpu | null): ThreadCpu | null {
  if (!a || !b) return null;
  return { main: b.main - a.main, others: b.others - a.others };
}

/** Whole-machine CPU seconds (all cores) from /proc/stat: busy (not idle, not iowait) and total. */
export interface SystemCpu {
  readonly busy: number;
  readonly total: number;
}

export function systemCpu(): SystemCpu | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = v[3]! + v[4]!;
    return { busy: (total - idle) / TICKS, total: total / TICKS };
  } catch {
    return null;
  }
}

/** Seconds of CPU used on the machine by everything except `ours` during a window. */
export function foreignCpu(a: SystemCpu | null, b: SystemCpu | null, ours: number): number | null {
  if (!a || !b) return null;
  return Math.max(0, b.busy - a.busy - ours);
}
