/**
 * Micro-benchmark: the two Ed25519 operations of an auto-allow as the server does them (jose
 * over WebCrypto: verify the agent assertion, sign the access token) against `node:crypto`'s
 * one-shot sync `verify`/`sign`, serial and with 50 in flight.
 *
 *   node --import tsx bench/micro/crypto.ts
 */
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { exportJWK, importJWK, jwtVerify, SignJWT } from 'jose';
import { report, type Timing, time } from './lib.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const privJwk = await exportJWK(privateKey);
const pubJwk = await exportJWK(publicKey);
const josePriv = await importJWK({ ...privJwk, alg: 'EdDSA' }, 'EdDSA');
const josePub = await importJWK({ ...pubJwk }, 'EdDSA');
const audience = 'http://localhost:8787';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
function assertion(): string {
  const iat = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ iss: 'a', sub: 'a', aud: audience, iat, exp: iat + 300, jti: randomBytes(9).toString('base64url') })}`;
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
}
const tokens = Array.from({ length: 80_000 }, assertion);
let t = 0;

const verifyOpts = {
  algorithms: ['EdDSA'],
  audience,
  issuer: 'a',
  subject: 'a',
  requiredClaims: ['exp', 'jti'],
  clockTolerance: 60,
};

const joseVerify = () => jwtVerify(tokens[t++ % tokens.length]!, josePub, verifyOpts);
const nodeVerifyKey = createPublicKey({ key: pubJwk as never, format: 'jwk' });
/** What a node:crypto verifier does: split, one sync verify, parse the payload (claim checks are tiny). */
const nodeVerify = () => {
  const token = tokens[t++ % tokens.length]!;
  const dot2 = token.lastIndexOf('.');
  const ok = verify(
    null,
    Buffer.from(token.slice(0, dot2)),
    nodeVerifyKey,
    Buffer.from(token.slice(dot2 + 1), 'base64url'),
  );
  if (!ok) throw new Error('bad signature');
  return JSON.parse(Buffer.from(token.slice(token.indexOf('.') + 1, dot2), 'base64url').toString());
};

const claims = {
  client_id: 'bench-agent',
  task_id: 't1',
  request_digest: `sha256:${'ab'.repeat(32)}`,
  authorization_details: [
    { type: 'countersign_access', actions: ['read'], locations: ['postgres://staging/app/orders'] },
  ],
};
const joseSign = () =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k1' })
    .setIssuer(audience)
    .setSubject('bench-agent')
    .setAudience('postgres://staging/app')
    .setIssuedAt(1_800_000_000)
    .setExpirationTime(1_800_000_900)
    .setJti('lease_x')
    .sign(josePriv);
const nodeSign = () => {
  const input = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k1' })}.${b64({ ...claims, iss: audience, sub: 'bench-agent', aud: 'postgres://staging/app', iat: 1_800_000_000, exp: 1_800_000_900, jti: 'lease_x' })}`;
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
};

const rows: Timing[] = [];
rows.push(await time('jose jwtVerify (WebCrypto), serial', joseVerify, { iterations: 10_000 }));
rows.push(
  await time('jose jwtVerify (WebCrypto), 50 in flight', joseVerify, { iterations: 10_000, concurrency: 50 }),
);
rows.push(await time('node:crypto verify (sync) + JSON.parse', nodeVerify, { iterations: 10_000 }));
rows.push(await time('jose SignJWT (WebCrypto), serial', joseSign, { iterations: 10_000 }));
rows.push(
  await time('jose SignJWT (WebCrypto), 50 in flight', joseSign, { iterations: 10_000, concurrency: 50 }),
);
rows.push(await time('node:crypto sign (sync) + JSON/base64url', nodeSign, { iterations: 10_000 }));
report(rows);
