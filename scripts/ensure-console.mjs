#!/usr/bin/env node
// Builds the reviewer console when its bundle is missing or older than its sources, so that
// `npm start` and the end-to-end tests always serve the console that matches the code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const app = join(root, 'apps', 'console');
const built = join(app, 'dist', 'index.html');

function newest(dir) {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

const sources = Math.max(
  newest(join(app, 'src')),
  statSync(join(app, 'index.html')).mtimeMs,
  statSync(join(app, 'vite.config.ts')).mtimeMs,
);
if (existsSync(built) && statSync(built).mtimeMs >= sources) process.exit(0);
process.stderr.write('building the reviewer console (apps/console)…\n');
const r = spawnSync(
  process.execPath,
  [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'],
  {
    cwd: app,
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
