/**
 * The configured issuers by name (catalog `issuer:` picks one). Built once by createServer;
 * every issuer's `issue` is timed into the stage histogram.
 */
import type { Issuer, IssuerRegistry } from '@countersign/core';
import { type Metrics, timed } from '../metrics.js';

export interface IssuerEntry {
  readonly issuer: Issuer;
  /** Releases the issuer's resources (connection pools) when the server closes. */
  readonly close?: () => Promise<void>;
  /** Why this issuer cannot work right now (a missing master key), or null; shown in /healthz. */
  readonly unready?: () => string | null;
}

export interface ServerIssuers extends IssuerRegistry {
  readonly names: readonly string[];
  unready(): string | null;
  close(): Promise<void>;
}

function instrument(issuer: Issuer, metrics: Metrics): Issuer {
  const stage = issuer.mint === 'decision' ? 'signing' : 'issuing';
  return {
    kind: issuer.kind,
    mint: issuer.mint,
    downstream: issuer.downstream,
    supports: (request) => issuer.supports(request),
    plan: (grant) => issuer.plan(grant),
    issue: (grant) => timed(metrics, stage, () => issuer.issue(grant)),
    revoke: (lease) => issuer.revoke(lease),
  };
}

export function issuerRegistry(entries: ReadonlyMap<string, IssuerEntry>, metrics: Metrics): ServerIssuers {
  const issuers = new Map([...entries].map(([name, e]) => [name, instrument(e.issuer, metrics)]));
  const downstream = [...entries].filter(([, e]) => e.issuer.downstream).map(([name]) => name);
  return {
    get: (name) => issuers.get(name),
    downstream,
    names: [...entries.keys()].sort(),
    unready() {
      for (const [name, e] of entries) {
        const why = e.unready?.();
        if (why) return `issuer ${name}: ${why}`;
      }
      return null;
    },
    async close() {
      await Promise.all([...entries.values()].map((e) => e.close?.()));
    },
  };
}
