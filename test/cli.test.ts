/**
 * The CLI as a newcomer runs it: real processes, a real server on a real port, a real
 * SQLite file. Covers the "done when": npm start + demo, JWKS, introspection, and
 * `audit verify` naming an edited event.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../packages/cli/src/main.js';
import { openDb } from './support/db.js';

const BIN = resolve(import.meta.dirname, '../packages/cli/bin/countersign.cjs');

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

function cli(home: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, COUNTERSIGN_HOME: home, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('countersign CLI', () => {
  let home: string;
  let port: number;
  let server: ChildProcess;
  let serverLog = '';

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'countersign-cli-'));
    port = await freePort();
    server = spawn(process.execPath, [BIN, 'serve', '--dev', '--port', String(port)], {
      env: { ...process.env, COUNTERSIGN_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.on('data', (d) => (serverLog += d));
    server.stderr!.on('data', (d) => (serverLog += d));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`http://localhost:${port}/healthz`)).ok) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`server did not start:\n${serverLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    server?.kill('SIGTERM');
    await new Promise((r) => server?.once('exit', r));
    rmSync(home, { recursive: true, force: true });
  });

  it('dev mode warns loudly on start', () => {
    expect(serverLog).toContain('COUNTERSIGN IS RUNNING IN DEV MODE');
  });

  it('demo shows the three outcomes and the lease dying with its task', () => {
    const r = cli(home, ['demo', '--server', `http://localhost:${port}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('status: allowed');
    expect(r.stdout).toContain('verified against the JWKS');
    expect(r.stdout).toContain('introspection: active=true');
    expect(r.stdout).toContain('status: denied');
    expect(r.stdout).toContain('status: pending   review by: billing-oncall');
    expect(r.stdout).toContain('introspection of the read token now: active=false');
  });

  it('agent add writes a 0600 private key; request acts as the agent; bad input gets a coded error', () => {
    const add = cli(home, ['agent', 'add', 'report-bot', '--owner', 'data', '--env', 'staging']);
    expect(add.code).toBe(0);
    const keyFile = /private key written to (\S+)/.exec(add.stdout)?.[1];
    expect(keyFile).toBeDefined();
    expect(statSync(keyFile!).mode & 0o777).toBe(0o600);
    expect(cli(home, ['agent', 'list']).stdout).toMatch(/active\s+report-bot\s+owner=data/);

    const dup = cli(home, ['agent', 'add', 'report-bot', '--owner', 'data']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^error CS_AGENT_EXISTS: /);
    const bad = cli(home, ['agent', 'add', 'Bad Id!', '--owner', 'data']);
    expect(bad.stderr).toMatch(/^error CS_INVALID_IDENTIFIER: /);

    const server = ['--server', `http://localhost:${port}`];
    const base = [
      'request',
      '--agent',
      'report-bot',
      '--key',
      keyFile!,
      '--purpose',
      'weekly report',
      '--task',
      't-9',
      ...server,
    ];
    const ok = cli(home, [...base, '--action', 'read', '--resource', 'postgres://staging/app/orders']);
    expect(ok.code).toBe(0);
    const answer = JSON.parse(ok.stdout);
    expect(answer.status).toBe('allowed');
    // C4: the server's log never carries the credential it handed out.
    expect(serverLog).not.toContain(answer.credential.access_token.split('.')[2]);
    const traversal = cli(home, [
      ...base,
      '--action',
      'read',
      '--resource',
      'postgres://staging/../prod/billing',
    ]);
    expect(traversal.code).toBe(1);
    expect(traversal.stderr).toMatch(/^error CS_INVALID_RESOURCE: /);

    const done = cli(home, [
      'task',
      'complete',
      't-9',
      '--agent',
      'report-bot',
      '--key',
      keyFile!,
      ...server,
    ]);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout).revoked_leases).toHaveLength(1);

    const unreachable = cli(home, [
      ...base,
      '--action',
      'read',
      '--resource',
      'postgres://staging/app/orders',
      '--server',
      'http://localhost:1',
    ]);
    expect(unreachable.stderr).toMatch(/cannot reach the Countersign server/);
  }, 240_000); // about ten CLI processes, each starting tsx: slow on a busy machine

  it('policy validate accepts the examples and names the broken file', () => {
    const ok = cli(home, ['policy', 'validate']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/policies in .* are valid; version sha256:/);
    const broken = mkdtempSync(join(tmpdir(), 'countersign-pol-'));
    writeFileSync(join(broken, 'bad.cedar'), 'permit (principal, action, resource) when { resource.nope };');
    const bad = cli(home, ['policy', 'validate', '--policies', broken]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('bad.cedar');
    rmSync(broken, { recursive: true, force: true });
  });

  it('every command has --help', async () => {
    const commands = [
      [],
      ['init'],
      ['serve'],
      ['agent', 'add'],
      ['agent', 'list'],
      ['agent', 'suspend'],
      ['request'],
      ['task', 'complete'],
      ['audit', 'verify'],
      ['policy', 'validate'],
      ['demo'],
    ];
    for (const args of commands) {
      let out = '';
      const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
        out += String(chunk);
        return true;
      });
      try {
        expect(await main(['node', 'countersign', ...args, '--help']), args.join(' ')).toBe(0);
      } finally {
        write.mockRestore();
      }
      expect(out).toMatch(/^Usage: countersign/);
    }
    expect(cli(home, ['--help']).stdout).toContain('Usage: countersign');
  });

  it('audit verify passes, then fails naming the event after one row is edited in the SQLite file', () => {
    const ok = cli(home, ['audit', 'verify']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/audit chain intact: \d+ events/);
    const db = openDb(home);
    const row = db
      .prepare(
        "SELECT seq, id, data FROM audit_events WHERE type = 'access_request.decided' ORDER BY seq LIMIT 1",
      )
      .get() as {
      seq: number;
      id: string;
      data: string;
    };
    const data = JSON.parse(row.data);
    data.outcome = data.outcome === 'allow' ? 'deny' : 'allow';
    db.prepare('UPDATE audit_events SET data = ? WHERE seq = ?').run(JSON.stringify(data), row.seq);
    db.close();
    const broken = cli(home, ['audit', 'verify']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`event #${row.seq} (${row.id})`);
    expect(broken.stderr).toContain('event changed');
    expect(readFileSync(join(home, 'countersign.yaml'), 'utf8')).toContain('dev: true');
  });
});
