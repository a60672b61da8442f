/**
 * Shared tools for the attack suites in test/security: raw JWS construction (for headers and
 * algorithms that jose refuses to produce), a seeded PRNG, refusal assertions that also check
 * that nothing was recorded or issued, and a read-only view of the SQLite file.
 */
import { createPrivateKey, sign as edSign } from 'node:crypto';
import Database from 'better-sqlite3';
import type { JWK } from 'jose';
import { expect } from 'vitest';
import type { Harness, TestAgent } from '../support/harness.js';
import { ISSUER } from '../support/harness.js';

export const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');
export const fromB64url = (text: string): Buffer => Buffer.from(text, 'base64url');

/** The standard claims of an agent assertion at the harness clock's current time. */
export function claimsFor(h: Harness, agent: TestAgent, extra: Record<string, unknown> = {}) {
  const iat = Math.floor(h.clock.now() / 1000);
  return {
    iss: agent.id,
    sub: agent.id,
    aud: ISSUER,
    jti: crypto.randomUUID(),
    iat,
    exp: iat + 60,
    ...extra,
  };
}

/** Encodes header.payload and signs it with an Ed25519 private JWK, whatever the header says. */
export function signRaw(header: Record<string, unknown>, payload: Record<string, unknown>, key: JWK): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const privateKey = createPrivateKey({ key: key as never, format: 'jwk' });
  return `${input}.${b64url(edSign(null, Buffer.from(input), privateKey))}`;
}

/** An unsigned token: header.payload.signature with the given (usually empty) signature. */
export function unsigned(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  sig = '',
): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${sig}`;
}

/** Every mutation corpus can be reproduced from its seed. */
export { prng } from '../support/prng.js';

/** The seed for a suite: SECURITY_SEED from the environment, else a fresh one (printed by the caller). */
export function suiteSeed(): number {
  const fromEnv = process.env.SECURITY_SEED;
  return fromEnv ? Number(fromEnv) >>> 0 : (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
}

/** Counts what an attack must never create. Read through a separate read-only connection. */
export function dbCounts(h: Harness): { requests: number; leases: number; tokenIds: number } {
  const db = new Database(h.server.deps.config.sqliteFile, { readonly: true, fileMustExist: true });
  try {
    const count = (table: string) =>
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { requests: count('access_requests'), leases: count('leases'), tokenIds: count('token_ids') };
  } finally {
    db.close();
  }
}

/** Every table the store created, read straight from sqlite_master. */
export function tableNames(h: Harness): string[] {
  const db = new Database(h.server.deps.config.sqliteFile, { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{
        name: string;
      }>
    ).map((r) => r.name);
  } finally {
    db.close();
  }
}

export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly text: string;
}

/** Reads a response that must be a coded refusal: status, stable code, no credential bytes. */
export async function refusal(res: Response): Promise<Refusal> {
  const text = await res.text();
  let code = '';
  try {
    const json = JSON.parse(text) as {
      error?: { code?: string } | string;
      code?: string;
      credential?: unknown;
    };
    expect(json.credential, text).toBeUndefined();
    code = typeof json.error === 'object' ? (json.error?.code ?? '') : (json.code ?? '');
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  expect(text).not.toContain('access_token');
  expect(text).not.toContain('"allowed"');
  return { status: res.status, code, text };
}

/** Asserts a refusal with this status and one of these codes. */
export async function expectRefused(res: Response, status: number, codes: string | readonly string[]) {
  const r = await refusal(res);
  const allowed = typeof codes === 'string' ? [codes] : codes;
  expect(r.status, r.text).toBe(status);
  expect(allowed, r.text).toContain(r.code);
  return r;
}

/** The loose shape of our JSON answers, enough for assertions. */
export interface WireJson {
  id?: string;
  status?: string;
  error?: { code?: string; message?: string };
  credential?: { access_token: string; lease_id: string };
  decision?: { outcome: string; request_digest: string; determining_policies: Array<{ id: string }> };
  active?: boolean;
}

export const readJson = async (res: Response): Promise<WireJson> => (await res.json()) as WireJson;
