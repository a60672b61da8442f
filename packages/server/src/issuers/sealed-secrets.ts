/**
 * Sealed secrets: static secrets Countersign keeps envelope-encrypted and releases only
 * through a grant for `secret://<name>`, once per grant (docs/credentials.md). Prefer the
 * credential proxy: a released secret cannot be taken back, a proxied one never leaves.
 *
 * Envelope (THREATS.md L1, L2, L4):
 * - each secret version has its own random 256-bit data key; the value is AES-256-GCM under
 *   it with a random 96-bit nonce; the data key is AES-256-GCM under the master key, again
 *   with a random 96-bit nonce;
 * - both AADs are the canonical JSON of {purpose, table, column, name, version} (the wrapped
 *   data key's also of the master key id): a ciphertext moved to another row, another column,
 *   another version or under another master key's label fails authentication;
 * - the master key never touches the store; it comes from COUNTERSIGN_MASTER_KEY or a key file
 *   (mode 0600). Without it nothing is released and the instance reports itself unready;
 * - every master-key encryption is counted in the store against MAX_WRAPS_PER_KEY.
 * Values are audited by a keyed fingerprint (HMAC under a key derived from the master key),
 * so a fingerprint gives no offline test for a guessed value without the master key.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import {
  type AuditActor,
  CountersignError,
  canonicalJson,
  type DomainContext,
  type Grant,
  type Issuer,
  parseResource,
  putSealedSecret,
  rewrapSealedSecrets,
  type SealedSecretRecord,
  taggedDigest,
} from '@countersign/core';

export const MASTER_KEY_BYTES = 32;
/** NIST SP 800-38D §8.2.2: a random 96-bit IV. */
export const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/**
 * NIST SP 800-38D §8.3: with random IVs, "the total number of invocations of the
 * authenticated encryption function shall not exceed 2^32" for a given key. Data keys are
 * used once each; the master key is counted in the store.
 */
export const MAX_WRAPS_PER_KEY = 2 ** 32;
export const MAX_SECRET_BYTES = 64 * 1024;
const AAD_PURPOSE = 'countersign/sealed-secret/v1';

export interface MasterKey {
  /** Derived from the key (not reversible): which key wrapped a row. */
  readonly id: string;
  readonly key: Buffer;
}

export function masterKeyFrom(text: string, where: string): MasterKey {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9_-]{43}$/.test(trimmed) ? Buffer.from(trimmed, 'base64url') : null;
  if (!key || key.length !== MASTER_KEY_BYTES) {
    throw new CountersignError(
      'CS_MASTER_KEY_UNAVAILABLE',
      `${where} must hold a 256-bit key in base64url (43 characters): countersign secret keygen`,
    );
  }
  return {
    id: `mk_${taggedDigest('countersign/master-key-id/v1\0', key.toString('base64url')).slice(0, 16)}`,
    key,
  };
}

/** A new master key, base64url. */
export function generateMasterKey(): string {
  return randomBytes(MASTER_KEY_BYTES).toString('base64url');
}

/**
 * The master key from the environment, else from the configured file; null when neither is
 * set. A file readable by group or others, or a malformed key, is refused (fail closed).
 */
export function loadMasterKey(source: { env?: string | undefined; file?: string | null }): MasterKey {
  if (source.env !== undefined && source.env !== '')
    return masterKeyFrom(source.env, 'COUNTERSIGN_MASTER_KEY');
  if (!source.file) {
    throw new CountersignError(
      'CS_MASTER_KEY_UNAVAILABLE',
      'no master key: set COUNTERSIGN_MASTER_KEY or secrets.master_key_file',
    );
  }
  let mode: number;
  try {
    mode = statSync(source.file).mode;
  } catch {
    throw new CountersignError('CS_MASTER_KEY_UNAVAILABLE', `master key file not found: ${source.file}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new CountersignError(
      'CS_MASTER_KEY_UNAVAILABLE',
      `master key file ${source.file} is readable by group or others; chmod 600 it`,
    );
  }
  return masterKeyFrom(readFileSync(source.file, 'utf8'), source.file);
}

/** A fresh random 96-bit nonce from the CSPRNG: the only nonce source aeadSeal uses. */
export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** AES-256-GCM with a fresh random 96-bit nonce. Returns the nonce and ciphertext||tag. */
export function aeadSeal(key: Buffer, plaintext: Buffer, aad: Buffer): { nonce: Buffer; sealed: Buffer } {
  const nonce = newNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { nonce, sealed };
}

/** Opens what aeadSeal made; throws when anything (key, nonce, ciphertext, tag, AAD) differs. */
export function aeadOpen(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) throw new Error('malformed ciphertext');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
}

/**
 * The AAD of one column of one sealed_secrets row (THREATS.md L2): table, column, row (name)
 * and version; the wrapped data key also binds the master key's id. The value's AAD does not:
 * rotating the master key re-wraps data keys and never touches values.
 */
export function sealedAad(
  column: 'ciphertext' | 'wrapped_key',
  name: string,
  version: number,
  keyId: string,
): Buffer {
  const aad = { purpose: AAD_PURPOSE, table: 'sealed_secrets', column, name, version };
  return Buffer.from(canonicalJson(column === 'wrapped_key' ? { ...aad, key_id: keyId } : aad), 'utf8');
}

/** Secret names: the path of a `secret://` resource (same grammar). */
export function validateSecretName(name: string): string {
  try {
    const parsed = parseResource(`secret://${name}`);
    if (parsed.uri.length > 200) throw new Error('too long');
  } catch (error) {
    throw new CountersignError(
      'CS_INVALID_IDENTIFIER',
      `a secret name is what follows secret:// in a resource name: ${(error as Error).message}`,
    );
  }
  return name;
}

export interface SecretSummary {
  readonly name: string;
  readonly version: number;
  readonly keyId: string;
  readonly fingerprint: string;
  readonly updatedAt: number;
}

export class SecretVault {
  readonly #ctx: Pick<DomainContext, 'store' | 'clock'>;
  #masterKey: MasterKey | null;
  #problem: string | null;
  readonly #keyUseCap: number;
  readonly #reload: (() => MasterKey) | null;
  #lastReloadAt = 0;

  constructor(options: {
    ctx: Pick<DomainContext, 'store' | 'clock'>;
    masterKey: MasterKey | null;
    /** Why there is no master key (for /healthz), when there is none. */
    problem?: string | null;
    keyUseCap?: number;
    /**
     * Loads the key again while there is none (a key file that appears later, THREATS.md R6):
     * tried at most once a second, when something needs the key or asks whether it is there.
     */
    reload?: () => MasterKey;
  }) {
    this.#ctx = options.ctx;
    this.#masterKey = options.masterKey;
    this.#problem = options.masterKey ? null : (options.problem ?? 'no master key');
    this.#keyUseCap = options.keyUseCap ?? MAX_WRAPS_PER_KEY;
    this.#reload = options.reload ?? null;
  }

  #retry(): void {
    if (this.#masterKey || !this.#reload) return;
    const now = Date.now();
    if (now - this.#lastReloadAt < 1000) return;
    this.#lastReloadAt = now;
    try {
      this.#masterKey = this.#reload();
      this.#problem = null;
    } catch (error) {
      this.#problem = (error as Error).message;
    }
  }

  /** Null when the master key is loaded; otherwise why not. */
  unavailable(): string | null {
    this.#retry();
    return this.#problem;
  }

  get keyId(): string | null {
    return this.#masterKey?.id ?? null;
  }

  #key(): MasterKey {
    this.#retry();
    if (!this.#masterKey) throw new CountersignError('CS_MASTER_KEY_UNAVAILABLE', this.#problem!);
    return this.#masterKey;
  }

  /** Keyed fingerprint of a value: HMAC-SHA-256 under a key derived from the master key. */
  fingerprint(value: Buffer, key: MasterKey = this.#key()): string {
    const fpKey = Buffer.from(
      hkdfSync('sha256', key.key, Buffer.alloc(0), 'countersign/secret-fingerprint/v1', 32),
    );
    return `hmac-sha256:${createHmac('sha256', fpKey).update(value).digest('hex')}`;
  }

  /** Seals a new version of `name` (version 1 when new) and audits it by fingerprint. */
  async put(name: string, value: Buffer, actor: AuditActor): Promise<SecretSummary> {
    validateSecretName(name);
    if (value.length === 0 || value.length > MAX_SECRET_BYTES) {
      throw new CountersignError('CS_INVALID_REQUEST', `a secret is 1..${MAX_SECRET_BYTES} bytes`);
    }
    const mk = this.#key();
    const existing = await this.#ctx.store.read((tx) => tx.getSealedSecret(name));
    const version = (existing?.version ?? 0) + 1;
    const dataKey = randomBytes(MASTER_KEY_BYTES);
    try {
      const body = aeadSeal(dataKey, value, sealedAad('ciphertext', name, version, mk.id));
      const wrap = aeadSeal(mk.key, dataKey, sealedAad('wrapped_key', name, version, mk.id));
      const now = this.#ctx.clock.now();
      const record: SealedSecretRecord = {
        name,
        version,
        ciphertext: body.sealed.toString('base64url'),
        nonce: body.nonce.toString('base64url'),
        wrappedKey: wrap.sealed.toString('base64url'),
        wrapNonce: wrap.nonce.toString('base64url'),
        keyId: mk.id,
        fingerprint: this.fingerprint(value, mk),
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      await putSealedSecret({
        ctx: this.#ctx,
        actor,
        input: { record, expectedVersion: existing?.version ?? null, keyUseCap: this.#keyUseCap },
      });
      return { name, version, keyId: mk.id, fingerprint: record.fingerprint, updatedAt: now };
    } finally {
      dataKey.fill(0);
    }
  }

  async exists(name: string): Promise<boolean> {
    return (await this.#ctx.store.read((tx) => tx.getSealedSecret(name))) !== null;
  }

  /** Decrypts the current version of `name`. Any tampering is CS_SECRET_CORRUPT, never plaintext. */
  async open(name: string): Promise<{ value: Buffer; version: number; fingerprint: string }> {
    const record = await this.#ctx.store.read((tx) => tx.getSealedSecret(name));
    if (!record) throw new CountersignError('CS_SECRET_NOT_FOUND', `no sealed secret named ${name}`);
    const mk = this.#key();
    if (record.keyId !== mk.id) {
      throw new CountersignError(
        'CS_MASTER_KEY_UNAVAILABLE',
        `secret ${name} is sealed under master key ${record.keyId}; the loaded key is ${mk.id}`,
      );
    }
    let dataKey: Buffer | null = null;
    try {
      dataKey = aeadOpen(
        mk.key,
        Buffer.from(record.wrapNonce, 'base64url'),
        Buffer.from(record.wrappedKey, 'base64url'),
        sealedAad('wrapped_key', record.name, record.version, record.keyId),
      );
      const value = aeadOpen(
        dataKey,
        Buffer.from(record.nonce, 'base64url'),
        Buffer.from(record.ciphertext, 'base64url'),
        sealedAad('ciphertext', record.name, record.version, record.keyId),
      );
      return { value, version: record.version, fingerprint: record.fingerprint };
    } catch {
      throw new CountersignError('CS_SECRET_CORRUPT', `sealed secret ${name} does not authenticate: refused`);
    } finally {
      dataKey?.fill(0);
    }
  }

  async list(): Promise<SecretSummary[]> {
    const rows = await this.#ctx.store.read((tx) => tx.listSealedSecrets());
    return rows.map((r) => ({
      name: r.name,
      version: r.version,
      keyId: r.keyId,
      fingerprint: r.fingerprint,
      updatedAt: r.updatedAt,
    }));
  }

  /**
   * Re-wraps every data key from the loaded master key to `next`, in one unit of work. Rows
   * already under `next` are left alone, so an interrupted rotation can simply run again.
   * Values are never decrypted: only the data keys are unwrapped and wrapped again.
   */
  async rotate(next: MasterKey, actor: AuditActor): Promise<number> {
    const mk = this.#key();
    if (next.id === mk.id)
      throw new CountersignError('CS_INVALID_REQUEST', 'the new master key is the current one');
    const rows = await this.#ctx.store.read((tx) => tx.listSealedSecrets());
    const rewrapped: Array<{ name: string; version: number; wrappedKey: string; wrapNonce: string }> = [];
    for (const r of rows) {
      if (r.keyId === next.id) continue;
      if (r.keyId !== mk.id) {
        throw new CountersignError(
          'CS_MASTER_KEY_UNAVAILABLE',
          `secret ${r.name} is sealed under ${r.keyId}, neither the loaded nor the new key`,
        );
      }
      let dataKey: Buffer | null = null;
      try {
        try {
          dataKey = aeadOpen(
            mk.key,
            Buffer.from(r.wrapNonce, 'base64url'),
            Buffer.from(r.wrappedKey, 'base64url'),
            sealedAad('wrapped_key', r.name, r.version, r.keyId),
          );
        } catch {
          throw new CountersignError('CS_SECRET_CORRUPT', `sealed secret ${r.name} does not authenticate`);
        }
        const wrap = aeadSeal(next.key, dataKey, sealedAad('wrapped_key', r.name, r.version, next.id));
        rewrapped.push({
          name: r.name,
          version: r.version,
          wrappedKey: wrap.sealed.toString('base64url'),
          wrapNonce: wrap.nonce.toString('base64url'),
        });
      } finally {
        dataKey?.fill(0);
      }
    }
    return rewrapSealedSecrets({
      ctx: this.#ctx,
      actor,
      input: { fromKeyId: mk.id, toKeyId: next.id, rewrapped, keyUseCap: this.#keyUseCap },
    });
  }
}

/** The name a `secret://` resource names, or why it names none. */
export function secretNameOf(resource: string): string | { error: string } {
  if (!resource.startsWith('secret://')) return { error: 'the resource is not secret://<name>' };
  try {
    return validateSecretName(resource.slice('secret://'.length));
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/**
 * The `sealed_secret` issuer: releases the current version of `secret://<name>` to the agent
 * once per grant (a `delivery` issuer: the lease's claim is the compare-and-set). Nothing
 * downstream can be revoked: a released value is out of Countersign's hands, which is why the
 * docs steer operators to the credential proxy.
 */
export function sealedSecretIssuer(options: {
  name: string;
  vault: SecretVault;
  actions: readonly string[];
}): Issuer {
  const { vault } = options;
  const plan = (grant: Grant) => {
    const name = secretNameOf(grant.resource);
    if (typeof name !== 'string') throw new TypeError(name.error);
    return { credentialId: grant.leaseId, scope: { secret: name } };
  };
  return {
    kind: 'sealed_secret',
    mint: 'delivery',
    downstream: false,
    async supports({ action, resource }) {
      const name = secretNameOf(resource);
      if (typeof name !== 'string') return name.error;
      if (!options.actions.includes(action)) {
        return `issuer ${options.name} releases secrets for ${options.actions.join(', ')} only`;
      }
      const missing = vault.unavailable();
      if (missing) return `sealed secrets cannot be released: ${missing}`;
      if (!(await vault.exists(name))) return `no sealed secret named ${name}`;
      return null;
    },
    plan,
    async issue(grant) {
      const { scope } = plan(grant);
      const opened = await vault.open(String(scope.secret));
      const utf8 = opened.value.toString('utf8');
      const isText = Buffer.from(utf8, 'utf8').equals(opened.value);
      try {
        return {
          credential: {
            type: 'sealed_secret',
            name: scope.secret,
            version: opened.version,
            encoding: isText ? 'utf8' : 'base64',
            value: isText ? utf8 : opened.value.toString('base64'),
            expires_at: new Date(grant.expiresAt).toISOString(),
            lease_id: grant.leaseId,
          },
          credentialId: grant.leaseId,
          fingerprint: opened.fingerprint,
          scope: { ...scope, version: opened.version },
        };
      } finally {
        opened.value.fill(0);
      }
    },
    // Nothing to take back downstream: the lease ends, and no further release is possible.
    async revoke() {},
  };
}
