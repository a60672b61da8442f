import { readFileSync, statSync } from 'node:fs';
import { CountersignError } from '@countersign/core';

/**
 * Reads a secret from a file the operator keeps: it must exist and be readable by its owner
 * only (no group or other bits, like an SSH key), and its value is trimmed of one trailing
 * newline. The path is named in errors; the content never is.
 */
export function readSecretFile(path: string, what: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    throw new CountersignError('CS_CONFIG_INVALID', `${what}: file not found: ${path}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `${what}: ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (value.length === 0) throw new CountersignError('CS_CONFIG_INVALID', `${what}: ${path} is empty`);
  return value;
}
