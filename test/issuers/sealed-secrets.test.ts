/**
 * Sealed secrets: envelope encryption at rest and release through a grant, attacked as
 * THREATS.md L1, L2, L4 and C4 say.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  aeadOpen,
  aeadSeal,
  generateMasterKey,
  masterKeyFrom,
  NONCE_BYTES,
  newNonce,
  SecretVault,
  sealedAad,
} from '@countersign/server';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { secretList, secretPut, secretRotateMasterKey } from '../../packages/cli/src/commands/secret.js';
import { openDb } from '../support/db.js';
import { type Harness, startHarness, type TestAgent } from '../support/harness.js';
import { editConfig, sealedSecretKind } from './kinds.js';

const OPERATOR = { type: 'operator' as const, id: 'test' };

async function audit(h: Harness) {
  const events = [];
  for await (const e of h.server.deps.ctx.store.auditEvents()) events.push(e);
  return events;
}

describe('sealed secrets', () => {
  const kind = sealedSecretKind();
  let h: Harness;
  let agent: TestAgent;
  const dirs: string[] = [];
  afterEach(async () => {
    await h?.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function start(configure: (home: string) => void = kind.configure) {
    h = await startHarness({ configure });
    agent = await h.addAgent('spiffe://acme.dev/agent/secrets', { environment: 'staging' });
  }

  const release = (resource = 'secret://contract/api-key', task = 't') =>
    h.requestAccess(agent, { action: 'read', resource, intent: { purpose: 'p', task_id: task } });

  it('C4 a grant releases the value once, audited by a keyed fingerprint that matches the put; retries never see it again', async () => {
    await start();
    await kind.ready!(h);
    const { status, json } = await release();
    expect(status).toBe(201);
    expect(json.credential).toMatchObject({
      type: 'sealed_secret',
      name: 'contract/api-key',
      version: 1,
      value: kind.canary,
    });
    const events = await audit(h);
    const put = events.find((e) => e.type === 'secret.put')!;
    const issued = events.find((e) => e.type === 'lease.issued')!;
    expect(put.data.fingerprint).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(issued.data.fingerprint).toBe(put.data.fingerprint);
    expect(JSON.stringify(events)).not.toContain(kind.canary);
    // The same request read again: the value is never handed out a second time.
    for (let i = 0; i < 3; i++) {
      const again = await h.call('GET', `/v1/access-requests/${json.id}`, { agent });
      expect(JSON.stringify(await again.json())).not.toContain(kind.canary);
    }
    // An unknown secret is refused at decision time, before any reviewer could be asked.
    const unknown = await release('secret://contract/nope');
    expect(unknown.json).toMatchObject({ status: 'denied' });
    expect(unknown.json.decision.error_code).toBe('CS_ISSUER_UNSUPPORTED');
  });

  it('L1 a copy of the database files holds nothing usable: no plaintext, and the ciphertext does not open without the master key', async () => {
    await start();
    await kind.ready!(h);
    await release();
    const copy = mkdtempSync(join(tmpdir(), 'countersign-stolen-'));
    dirs.push(copy);
    const files = readdirSync(h.home).filter((f) => f.startsWith('countersign.db'));
    for (const f of files) copyFileSync(join(h.home, f), join(copy, f));
    const encodings = [
      kind.canary,
      Buffer.from(kind.canary).toString('base64'),
      Buffer.from(kind.canary).toString('base64url'),
      Buffer.from(kind.canary).toString('hex'),
      Buffer.from(kind.canary, 'utf16le').toString('latin1'),
    ];
    for (const f of files) {
      const bytes = readFileSync(join(copy, f)).toString('latin1');
      for (const e of encodings) expect(bytes.includes(e), `${f} holds ${e}`).toBe(false);
    }
    // The thief opens the copy and tries the row with every key it could have: none works.
    const db = new Database(join(copy, 'countersign.db'), { readonly: true });
    const row = db.prepare('SELECT * FROM sealed_secrets').get() as Record<string, any>;
    db.close();
    const wrapped = Buffer.from(row.wrapped_key, 'base64url');
    for (const guess of [
      Buffer.alloc(32),
      randomBytes(32),
      Buffer.from(row.key_id.padEnd(32, '0').slice(0, 32)),
    ]) {
      expect(() =>
        aeadOpen(
          guess,
          Buffer.from(row.wrap_nonce, 'base64url'),
          wrapped,
          sealedAad('wrapped_key', row.name, row.version, row.key_id),
        ),
      ).toThrow();
    }
    // The master key lives outside the store, in a 0600 file.
    expect(statSync(join(h.home, 'keys', 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('L2 ciphertexts swapped between rows or columns, or relabelled, fail to open: an error and an audit event, never plaintext', async () => {
    await start((home) => {
      kind.configure(home);
    });
    await h.server.deps.vault.put('contract/api-key', Buffer.from(kind.canary), OPERATOR);
    await h.server.deps.vault.put('contract/other', Buffer.from('the-other-secret-value'), OPERATOR);
    const attacks: Array<[string, string]> = [
      // another row's ciphertext (and its nonce) under this row's wrapped key
      [
        'swap rows',
        `UPDATE sealed_secrets SET ciphertext = (SELECT ciphertext FROM sealed_secrets WHERE name = 'contract/other'), nonce = (SELECT nonce FROM sealed_secrets WHERE name = 'contract/other') WHERE name = 'contract/api-key'`,
      ],
      // another row's wrapped data key
      [
        'swap keys',
        `UPDATE sealed_secrets SET wrapped_key = (SELECT wrapped_key FROM sealed_secrets WHERE name = 'contract/other'), wrap_nonce = (SELECT wrap_nonce FROM sealed_secrets WHERE name = 'contract/other') WHERE name = 'contract/api-key'`,
      ],
      // the whole envelope of the other row, relabelled with this name
      [
        'swap envelope',
        `UPDATE sealed_secrets SET (ciphertext, nonce, wrapped_key, wrap_nonce) = (SELECT ciphertext, nonce, wrapped_key, wrap_nonce FROM sealed_secrets WHERE name = 'contract/other') WHERE name = 'contract/api-key'`,
      ],
      // a column moved into another
      [
        'swap columns',
        `UPDATE sealed_secrets SET ciphertext = wrapped_key, nonce = wrap_nonce WHERE name = 'contract/api-key'`,
      ],
      ['rollback version', "UPDATE sealed_secrets SET version = version + 1 WHERE name = 'contract/api-key'"],
      [
        'relabel master key',
        "UPDATE sealed_secrets SET key_id = 'mk_0000000000000000' WHERE name = 'contract/api-key'",
      ],
    ];
    const pristine = openDb(h.home)
      .prepare("SELECT * FROM sealed_secrets WHERE name = 'contract/api-key'")
      .get() as Record<string, unknown>;
    let task = 0;
    for (const [what, sql] of attacks) {
      const db = openDb(h.home);
      db.prepare(
        'UPDATE sealed_secrets SET ciphertext = ?, nonce = ?, wrapped_key = ?, wrap_nonce = ?, version = ?, key_id = ? WHERE name = ?',
      ).run(
        pristine.ciphertext,
        pristine.nonce,
        pristine.wrapped_key,
        pristine.wrap_nonce,
        pristine.version,
        pristine.key_id,
        'contract/api-key',
      );
      db.exec(sql);
      db.close();
      const { status, json } = await release('secret://contract/api-key', `t-${++task}`);
      expect(status, what).toBe(503);
      expect(json.error.code, what).toBe('CS_ISSUER_UNAVAILABLE');
      expect(JSON.stringify(json), what).not.toContain('the-other-secret-value');
      expect(JSON.stringify(json), what).not.toContain(kind.canary);
      const failed = (await audit(h)).filter((e) => e.type === 'lease.issue_failed').at(-1);
      expect(failed?.data.error, what).toMatch(/^CS_(SECRET_CORRUPT|MASTER_KEY_UNAVAILABLE)$/);
    }
  });

  it("L4 random 96-bit nonces: a million nonces repeat none, every seal draws a fresh one, and the master key's use is capped", async () => {
    // aeadSeal's only nonce source is newNonce (96 bits from the CSPRNG): a million of them...
    const seen = new Set<string>();
    for (let i = 0; i < 1_000_000; i++) seen.add(newNonce().toString('base64'));
    expect(seen.size).toBe(1_000_000);
    // ... and ten thousand real seals under one key: distinct nonces, each opening only with its own.
    const key = randomBytes(32);
    const aad = Buffer.from('aad');
    const seals = Array.from({ length: 10_000 }, () => aeadSeal(key, Buffer.from('same plaintext'), aad));
    expect(new Set(seals.map((x) => x.nonce.toString('base64'))).size).toBe(10_000);
    expect(seals.every((x) => x.nonce.length === NONCE_BYTES)).toBe(true);
    expect(aeadOpen(key, seals[0]!.nonce, seals[0]!.sealed, aad).toString()).toBe('same plaintext');
    expect(() => aeadOpen(key, seals[1]!.nonce, seals[0]!.sealed, aad)).toThrow();
    // The cap: the store counts every wrap under a master key and refuses the one past it.
    await start();
    const mk = masterKeyFrom(generateMasterKey(), 'test');
    const capped = new SecretVault({ ctx: h.server.deps.ctx, masterKey: mk, keyUseCap: 3 });
    for (let i = 0; i < 3; i++) await capped.put(`capped/s${i}`, Buffer.from(`value-${i}`), OPERATOR);
    await expect(capped.put('capped/s3', Buffer.from('value-3'), OPERATOR)).rejects.toMatchObject({
      code: 'CS_KEY_USAGE_EXCEEDED',
    });
    expect((await capped.list()).map((s) => s.name)).toEqual(['capped/s0', 'capped/s1', 'capped/s2']);
    // Rotation moves to a fresh key and its own count.
    const fresh = masterKeyFrom(generateMasterKey(), 'test');
    expect(await capped.rotate(fresh, OPERATOR)).toBe(3);
    const after = new SecretVault({ ctx: h.server.deps.ctx, masterKey: fresh, keyUseCap: 4 });
    await after.put('capped/s3', Buffer.from('value-3'), OPERATOR);
    await expect(after.put('capped/s4', Buffer.from('value-4'), OPERATOR)).rejects.toMatchObject({
      code: 'CS_KEY_USAGE_EXCEEDED',
    });
  }, 180_000);

  it('INV-9 without the master key nothing is released and the instance is unready', async () => {
    await start((home) => {
      kind.configure(home);
      rmSync(join(home, 'keys', 'master.key'));
    });
    const health = await h.call('GET', '/healthz');
    expect(health.status).toBe(503);
    expect(JSON.stringify(await health.json())).toContain('master key');
    const { json } = await release();
    expect(json.status).toBe('denied');
    expect(json.decision.error_code).toBe('CS_ISSUER_UNSUPPORTED');
    await expect(h.server.deps.vault.put('x/y', Buffer.from('v'), OPERATOR)).rejects.toMatchObject({
      code: 'CS_MASTER_KEY_UNAVAILABLE',
    });
  });

  it('the CLI seals from a value (never argv), lists without values, and rotates the master key: the old key opens nothing, the new one everything', async () => {
    await start();
    await h.close({ keepHome: true });
    dirs.push(h.home);
    const home = h.home;
    await secretPut(home, 'contract/api-key', Buffer.from(kind.canary));
    await secretPut(home, 'contract/api-key', Buffer.from(`${kind.canary}-v2`));
    const listed = await secretList(home);
    expect(listed).toMatchObject([{ name: 'contract/api-key', version: 2 }]);
    expect(JSON.stringify(listed)).not.toContain(kind.canary);
    const oldKey = readFileSync(join(home, 'keys', 'master.key'), 'utf8');
    const newKeyFile = join(home, 'keys', 'master-2.key');
    const rotated = await secretRotateMasterKey(home, newKeyFile);
    expect(rotated).toMatchObject({ rewrapped: 1, generated: true });
    expect(statSync(newKeyFile).mode & 0o777).toBe(0o600);
    // A server still on the old key fails closed; restarted on the new key it releases v2.
    h = await startHarness({ home, configure: () => {} });
    agent = await h.addAgent('spiffe://acme.dev/agent/secrets-1', { environment: 'staging' });
    const stale = await release();
    expect(stale.status).toBe(503);
    expect(JSON.stringify(stale.json)).not.toContain(kind.canary);
    await h.close({ keepHome: true });
    editConfig(home, (c) => {
      c.secrets = { master_key_file: 'keys/master-2.key' };
    });
    h = await startHarness({ home, configure: () => {} });
    agent = await h.addAgent('spiffe://acme.dev/agent/secrets-2', { environment: 'staging' });
    const ok = await release();
    expect(ok.json.credential?.value).toBe(`${kind.canary}-v2`);
    const events = await audit(h);
    expect(events.find((e) => e.type === 'secret.master_key_rotated')?.data).toMatchObject({
      to_key_id: rotated.keyId,
      rewrapped: 1,
    });
    expect(oldKey).not.toBe(readFileSync(newKeyFile, 'utf8'));
  });
});
