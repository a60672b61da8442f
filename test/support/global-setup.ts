import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The console's end-to-end tests serve the built bundle: build it when it is missing or stale. */
export default function setup(): void {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '../../scripts/ensure-console.mjs')], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('building the console failed');
}
