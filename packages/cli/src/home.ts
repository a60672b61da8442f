/** Where the CLI finds things: the data dir and the shipped examples. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultHome } from '@countersign/server';

export const EXAMPLES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../examples');

export function resolveHome(dir?: string): string {
  return dir ? resolve(dir) : defaultHome();
}

export function serverUrl(option?: string): string {
  return (option ?? process.env.COUNTERSIGN_URL ?? 'http://localhost:8787').replace(/\/+$/, '');
}

export function isInitialised(home: string): boolean {
  return existsSync(join(home, 'countersign.yaml'));
}
