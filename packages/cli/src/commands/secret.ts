/**
 * `countersign secret put|list|keygen|rotate-master-key`: sealed secrets on the local data
 * directory. Values come from stdin, never from argv (argv is visible to every process on the
 * host and lands in shell history). Prefer the credential proxy: docs/credentials.md.
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { CountersignError } from '@countersign/core';
import { generateMasterKey, loadMasterKey, MAX_SECRET_BYTES, type SecretSummary } from '@countersign/server';
import { openLocal } from '../local.js';

const OPERATOR = { type: 'operator' as const, id: process.env.USER ?? 'operator' };

/** Reads the whole of stdin (bounded); refuses a terminal, where the value would be echoed. */
export async function readSecretFromStdin(stdin: NodeJS.ReadStream = process.stdin): Promise<Buffer> {
  if (stdin.isTTY) {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      'pipe the secret in (it is never taken from the command line): countersign secret put <name> < file',
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += b.length;
    if (size > MAX_SECRET_BYTES + 2)
      throw new CountersignError('CS_BODY_TOO_LARGE', `a secret is at most ${MAX_SECRET_BYTES} bytes`);
    chunks.push(b);
  }
  let value = Buffer.concat(chunks);
  // One trailing newline (from `echo` or an editor) is not part of the secret.
  if (value.at(-1) === 0x0a) value = value.subarray(0, value.at(-2) === 0x0d ? -2 : -1);
  return value;
}

export async function secretPut(home: string, name: string, value: Buffer): Promise<SecretSummary> {
  const local = await openLocal(home);
  try {
    return await local.deps.vault.put(name, value, OPERATOR);
  } finally {
    value.fill(0);
    await local.close();
  }
}

export async function secretList(home: string): Promise<SecretSummary[]> {
  const local = await openLocal(home);
  try {
    return await local.deps.vault.list();
  } finally {
    await local.close();
  }
}

/** Writes a new 256-bit master key to `file` (mode 0600); refuses to overwrite one. */
export function secretKeygen(file: string): void {
  if (existsSync(file)) throw new CountersignError('CS_INVALID_REQUEST', `${file} exists: not overwritten`);
  writeFileSync(file, `${generateMasterKey()}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
}

/**
 * Re-wraps every sealed secret's data key under the key in `newKeyFile` (generated there when
 * the file does not exist). The running servers keep the old key until restarted with the new
 * one: releases fail closed in between.
 */
export async function secretRotateMasterKey(
  home: string,
  newKeyFile: string,
): Promise<{ rewrapped: number; generated: boolean; keyId: string }> {
  const generated = !existsSync(newKeyFile);
  if (generated) secretKeygen(newKeyFile);
  const next = loadMasterKey({ file: newKeyFile });
  const local = await openLocal(home);
  try {
    const rewrapped = await local.deps.vault.rotate(next, OPERATOR);
    return { rewrapped, generated, keyId: next.id };
  } finally {
    await local.close();
  }
}
