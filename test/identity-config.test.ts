/** The trusted-issuer configuration is strict: every unsafe or ambiguous setting is refused at load. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@countersign/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initHome } from '../packages/cli/src/commands/init.js';
import { appendConfig } from './support/workload-issuers.js';

let home: string;
beforeEach(async () => {
  home = mkdtempSync(join(tmpdir(), 'countersign-idcfg-'));
  await initHome({ home, dev: true });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

function withIssuer(lines: string) {
  appendConfig(home, `identity:\n  trusted_issuers:\n    - ${lines.trim().split('\n').join('\n      ')}`);
  return () => loadConfig({ home, port: 8787, issuer: 'http://localhost:8787' });
}

const BASE = `issuer: https://k8s.acme.dev
kind: kubernetes
jwks_uri: https://k8s.acme.dev/openid/v1/jwks
audience: countersign
algorithms: [RS256]`;

describe('trusted issuer configuration', () => {
  it('accepts a minimal issuer with safe defaults (60 s skew, 10 min cache, 30 s cooldown, 5 s timeout)', () => {
    const config = withIssuer(BASE)();
    expect(config.trustedIssuers[0]).toMatchObject({
      issuer: 'https://k8s.acme.dev',
      clockSkewSeconds: 60,
      cacheMaxAgeSeconds: 600,
      cooldownSeconds: 30,
      timeoutSeconds: 5,
      requireDpop: false,
      tokenTypes: ['jwt', null],
    });
  });

  it('G1 clock_skew 120s (the maximum) is accepted', () => {
    expect(withIssuer(`${BASE}\nclock_skew: 120s`)().trustedIssuers[0]!.clockSkewSeconds).toBe(120);
  });

  it('G1 clock_skew above 120 s is refused', () => {
    expect(withIssuer(`${BASE}\nclock_skew: 121s`)).toThrow(/clock_skew is at most 120s/);
  });

  it('B4 B5 symmetric and none algorithms cannot be configured', () => {
    expect(withIssuer(BASE.replace('[RS256]', '[HS256]'))).toThrow(/algorithms/);
  });

  it('B4 alg none cannot be configured', () => {
    expect(withIssuer(BASE.replace('[RS256]', '[none]'))).toThrow(/algorithms/);
  });

  it('exactly one key source: none or two are refused', () => {
    expect(withIssuer(BASE.replace('jwks_uri: https://k8s.acme.dev/openid/v1/jwks', ''))).toThrow(
      /exactly one/,
    );
  });

  it('two key sources are refused', () => {
    expect(withIssuer(`${BASE}\ndiscovery: true`)).toThrow(/exactly one/);
  });

  it('B6 this server cannot be its own trusted issuer (its leases would pass as workload tokens)', () => {
    expect(withIssuer(BASE.replace('issuer: https://k8s.acme.dev', 'issuer: http://localhost:8787'))).toThrow(
      /cannot be this server/,
    );
  });

  it('B6 dpop+jwt or a receipt typ can never be a workload token type', () => {
    expect(withIssuer(`${BASE}\ntoken_types: [dpop+jwt]`)).toThrow(/never a workload token/);
  });

  it('a spiffe issuer needs a trust domain', () => {
    expect(withIssuer(BASE.replace('kind: kubernetes', 'kind: spiffe'))).toThrow(/trust_domain/);
  });

  it('plain http to a non-local host is refused', () => {
    expect(withIssuer(BASE.replace('jwks_uri: https://', 'jwks_uri: http://'))).toThrow(/https/);
  });

  it('unknown fields are refused', () => {
    expect(withIssuer(`${BASE}\njku_allowed: true`)).toThrow(/jku_allowed|Unrecognized/);
  });
});
