/**
 * The shipped example policies, evaluated with real Cedar and turned into outcomes with
 * core's `decide`, exactly as the checkpoint does. Every case runs against both engine
 * layouts (one preparsed set per action, and one set for everything) to show they agree.
 */
import { type ActionClass, type Decision, decide } from '@countersign/core';
import { describe, expect, it } from 'vitest';
import { type CedarPolicyEngine, policyEngineFromDirectory } from '../src/index.js';
import {
  type AgentFacts,
  agent,
  EXAMPLES_DIR,
  policyInput,
  type ResourceAttrs,
  SCHEMA_PATH,
  SETTINGS,
} from './helpers.js';

const engines: Array<[string, CedarPolicyEngine]> = [
  ['split by action', policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH)],
  ['single set', policyEngineFromDirectory(EXAMPLES_DIR, SCHEMA_PATH, { splitByAction: false })],
];

const ORDERS = 'postgres://staging/app/orders';
const ORDERS_FACTS: ResourceAttrs = {
  sensitivity: 'internal',
  environment: 'staging',
  owner: 'app',
  boundary: 'acme',
  catalogued: true,
};
const DOCS = 'https://docs/app/handbook';
const DOCS_FACTS: ResourceAttrs = { ...ORDERS_FACTS, sensitivity: 'public', environment: 'production' };
const CUSTOMERS = 'postgres://staging/app/customers';
const CUSTOMERS_FACTS: ResourceAttrs = { ...ORDERS_FACTS, sensitivity: 'confidential' };
const SIGNING_KEY = 'secret://kms/prod-signing-key';
const SIGNING_KEY_FACTS: ResourceAttrs = {
  sensitivity: 'restricted',
  environment: 'production',
  owner: 'security',
  boundary: 'acme',
  catalogued: true,
};
const INVOICES = 'postgres://prod/billing/invoices';
const INVOICES_FACTS: ResourceAttrs = {
  sensitivity: 'confidential',
  environment: 'production',
  owner: 'billing',
  boundary: 'acme',
  catalogued: true,
};
const USERS = 'postgres://prod/app/users';
const USERS_FACTS: ResourceAttrs = { ...INVOICES_FACTS, owner: 'app' };
const PARTNER = 's3://partner-acme/shared/q3.csv';
const PARTNER_FACTS: ResourceAttrs = {
  sensitivity: 'confidential',
  environment: 'production',
  owner: 'partnerships',
  boundary: 'partner-acme',
  catalogued: true,
};
const CLUSTER = 'k8s://prod/cluster/main';
const CLUSTER_FACTS: ResourceAttrs = { ...USERS_FACTS, owner: 'platform', sensitivity: 'internal' };
/** What core's catalog reports for a resource no entry matches. */
const UNKNOWN = 's3://shadow-bucket/dump.csv';
const UNKNOWN_FACTS: ResourceAttrs = {
  sensitivity: 'restricted',
  environment: 'unknown',
  owner: 'unknown',
  boundary: 'unknown',
  catalogued: false,
};
/** The friendliest facts an uncatalogued resource could carry: still never auto-allowed. */
const UNKNOWN_FRIENDLY_FACTS: ResourceAttrs = { ...ORDERS_FACTS, catalogued: false };

const appAgent = agent({ owner: 'app', environment: 'staging' });
const prodAgent = agent({ id: 'agent-prod', owner: 'app', environment: 'production' });
const securityAgent = agent({ id: 'agent-sec', owner: 'security', environment: 'production' });
const stagingAgent = agent({ id: 'agent-staging', owner: 'billing', environment: 'staging' });

interface Expected {
  readonly outcome: Decision['outcome'];
  readonly policies: readonly string[];
  readonly group?: string | null;
  readonly approvals?: number;
  readonly ttl?: number;
  readonly separation?: readonly string[];
}

interface Case {
  readonly name: string;
  readonly action: ActionClass;
  readonly agent: AgentFacts;
  readonly uri: string;
  readonly facts: ResourceAttrs;
  readonly tainted?: boolean;
  readonly expected: Expected;
}

const allow = (policy: string, ttl: number): Expected => ({
  outcome: 'allow',
  policies: [policy],
  ttl,
  approvals: 0,
  group: null,
});
const deny = (...policies: string[]): Expected => ({
  outcome: 'deny',
  policies,
  group: null,
  approvals: 0,
  ttl: 0,
});
const review = (group: string, policies: string[], more: Partial<Expected> = {}): Expected => ({
  outcome: 'review',
  policies,
  group,
  approvals: 1,
  ttl: SETTINGS.defaultMaxTtlSeconds,
  separation: [],
  ...more,
});

const cases: Case[] = [
  {
    name: 'read of an internal resource inside the boundary is allowed for 15 minutes',
    action: 'read',
    agent: appAgent,
    uri: ORDERS,
    facts: ORDERS_FACTS,
    expected: allow('read-internal', 15 * 60),
  },
  {
    name: 'read of a public resource inside the boundary is allowed for 15 minutes',
    action: 'read',
    agent: prodAgent,
    uri: DOCS,
    facts: DOCS_FACTS,
    expected: allow('read-internal', 15 * 60),
  },
  {
    name: 'export of a restricted secret by another team is denied',
    action: 'export',
    agent: prodAgent,
    uri: SIGNING_KEY,
    facts: SIGNING_KEY_FACTS,
    expected: deny('forbid-secret-export-non-owner'),
  },
  {
    name: 'export of a secret by its owning team goes to two security approvers, separated from the owner',
    action: 'export',
    agent: securityAgent,
    uri: SIGNING_KEY,
    facts: SIGNING_KEY_FACTS,
    expected: review('security', ['review-secret-export-owner'], {
      approvals: 2,
      ttl: 5 * 60,
      separation: ['owner'],
    }),
  },
  {
    name: "write to billing's production data goes to the billing on-call",
    action: 'write',
    agent: prodAgent,
    uri: INVOICES,
    facts: INVOICES_FACTS,
    expected: review('billing-oncall', ['review-production-change-billing']),
  },
  {
    name: "delete of billing's production data goes to the billing on-call",
    action: 'delete',
    agent: prodAgent,
    uri: INVOICES,
    facts: INVOICES_FACTS,
    expected: review('billing-oncall', ['review-production-change-billing']),
  },
  {
    name: 'write to other production data goes to the platform on-call',
    action: 'write',
    agent: prodAgent,
    uri: USERS,
    facts: USERS_FACTS,
    expected: review('platform-oncall', ['review-production-change-platform']),
  },
  {
    name: 'delete of other production data goes to the platform on-call',
    action: 'delete',
    agent: prodAgent,
    uri: USERS,
    facts: USERS_FACTS,
    expected: review('platform-oncall', ['review-production-change-platform']),
  },
  {
    name: 'a cross-boundary read goes to data governance',
    action: 'read',
    agent: prodAgent,
    uri: PARTNER,
    facts: PARTNER_FACTS,
    expected: review('data-governance', ['review-cross-boundary-read']),
  },
  {
    name: 'a cross-boundary read of internal data also goes to data governance',
    action: 'read',
    agent: prodAgent,
    uri: PARTNER,
    facts: { ...PARTNER_FACTS, sensitivity: 'internal' },
    expected: review('data-governance', ['review-cross-boundary-read']),
  },
  {
    name: 'share of anything goes to data governance',
    action: 'share',
    agent: appAgent,
    uri: ORDERS,
    facts: ORDERS_FACTS,
    expected: review('data-governance', ['review-share']),
  },
  {
    name: 'a tainted tool chain reading confidential data goes to security',
    action: 'read',
    agent: appAgent,
    uri: CUSTOMERS,
    facts: CUSTOMERS_FACTS,
    tainted: true,
    expected: review('security', ['review-tainted-sensitive']),
  },
  {
    name: 'B10 a tainted read of restricted data stays denied (taint never turns a deny into a review)',
    action: 'read',
    agent: securityAgent,
    uri: SIGNING_KEY,
    facts: SIGNING_KEY_FACTS,
    tainted: true,
    expected: deny(),
  },
  {
    name: 'a tainted tool chain reading internal data is still routine',
    action: 'read',
    agent: appAgent,
    uri: ORDERS,
    facts: ORDERS_FACTS,
    tainted: true,
    expected: allow('read-internal', 900),
  },
  {
    name: 'admin on production goes to two platform on-call approvers',
    action: 'admin',
    agent: prodAgent,
    uri: CLUSTER,
    facts: CLUSTER_FACTS,
    expected: review('platform-oncall', ['review-production-admin'], { approvals: 2 }),
  },
  {
    name: 'read of confidential non-production data inside the boundary is allowed for 10 minutes',
    action: 'read',
    agent: appAgent,
    uri: CUSTOMERS,
    facts: CUSTOMERS_FACTS,
    expected: allow('read-confidential-nonprod', 10 * 60),
  },
  {
    name: 'read of confidential production data inside the boundary gets no permit (default deny)',
    action: 'read',
    agent: prodAgent,
    uri: USERS,
    facts: USERS_FACTS,
    expected: deny(),
  },
  ...(['write', 'delete', 'export', 'share', 'admin'] as const).flatMap((action): Case[] => [
    {
      name: `${action} of an uncatalogued resource is forbidden`,
      action,
      agent: prodAgent,
      uri: UNKNOWN,
      facts: UNKNOWN_FACTS,
      expected: deny('forbid-uncatalogued-change'),
    },
    {
      name: `${action} of an uncatalogued resource is forbidden even with friendly facts`,
      action,
      agent: appAgent,
      uri: UNKNOWN,
      facts: UNKNOWN_FRIENDLY_FACTS,
      expected: deny('forbid-uncatalogued-change'),
    },
  ]),
  {
    name: 'read of an uncatalogued resource gets no permit (default deny)',
    action: 'read',
    agent: prodAgent,
    uri: UNKNOWN,
    facts: UNKNOWN_FACTS,
    expected: deny(),
  },
  {
    name: 'read of an uncatalogued resource with friendly facts gets no permit (default deny)',
    action: 'read',
    agent: appAgent,
    uri: UNKNOWN,
    facts: UNKNOWN_FRIENDLY_FACTS,
    expected: deny(),
  },
  {
    name: 'a tainted read of an uncatalogued resource gets no permit (default deny)',
    action: 'read',
    agent: appAgent,
    uri: UNKNOWN,
    facts: UNKNOWN_FACTS,
    tainted: true,
    expected: deny(),
  },
  ...(['write', 'delete', 'admin'] as const).map(
    (action): Case => ({
      name: `a staging agent's ${action} on production is forbidden (identity reuse across environments)`,
      action,
      agent: stagingAgent,
      uri: INVOICES,
      facts: INVOICES_FACTS,
      expected: deny('forbid-staging-agent-on-production'),
    }),
  ),
  {
    name: "a staging agent's export of a production secret it owns is forbidden",
    action: 'export',
    agent: agent({ id: 'agent-sec-staging', owner: 'security', environment: 'staging' }),
    uri: SIGNING_KEY,
    facts: SIGNING_KEY_FACTS,
    expected: deny('forbid-staging-agent-on-production'),
  },
  {
    name: 'a staging agent exporting a secret it does not own meets both forbids',
    action: 'export',
    agent: stagingAgent,
    uri: SIGNING_KEY,
    facts: SIGNING_KEY_FACTS,
    expected: deny('forbid-secret-export-non-owner', 'forbid-staging-agent-on-production'),
  },
  {
    name: 'an MCP tool call writing to a production repository goes to the platform on-call',
    action: 'write',
    agent: prodAgent,
    uri: 'github://acme/payments@main',
    facts: { ...USERS_FACTS, owner: 'platform' },
    expected: review('platform-oncall', ['review-production-change-platform']),
  },
  {
    name: 'deleting a repository through an MCP tool is forbidden, whatever would review it',
    action: 'delete',
    agent: prodAgent,
    uri: 'github://acme/payments',
    facts: { ...USERS_FACTS, owner: 'platform' },
    expected: deny('forbid-repository-deletion'),
  },
  {
    name: "the 'other' action class has no permit (default deny)",
    action: 'other',
    agent: appAgent,
    uri: ORDERS,
    facts: ORDERS_FACTS,
    expected: deny(),
  },
];

describe.each(engines)('example policies (%s)', (_layout, engine) => {
  it.each(cases)('$name', (c) => {
    const input = policyInput(c.action, c.agent, c.uri, c.facts, { tainted: c.tainted ?? false });
    const evaluation = engine.evaluate(input);
    expect(evaluation.kind).toBe('evaluated');
    const decision = decide(evaluation, engine.version, SETTINGS);
    const e = c.expected;
    expect(decision.outcome).toBe(e.outcome);
    expect(decision.errorCode).toBeNull();
    expect(decision.policyVersion).toBe(engine.version);
    expect(decision.determiningPolicies.map((p) => p.id)).toEqual([...e.policies].sort());
    if (e.group !== undefined) expect(decision.obligations.reviewerGroup).toBe(e.group);
    if (e.approvals !== undefined) expect(decision.obligations.approvals).toBe(e.approvals);
    if (e.ttl !== undefined) expect(decision.obligations.maxTtlSeconds).toBe(e.ttl);
    if (e.separation !== undefined) expect(decision.obligations.separation).toEqual(e.separation);
    if (e.outcome === 'deny' && e.policies.length === 0) {
      expect(decision.reasons).toEqual(['no policy permits this request (default deny)']);
    } else {
      expect(decision.reasons.length).toBe(e.policies.length);
    }
  });
});

describe('example policy files', () => {
  const [, engine] = engines[0]!;

  it('load, validate against the schema and carry an @id and a @reason on every policy', () => {
    expect(engine.policyCount).toBe(13);
    for (const policy of engine.policies) {
      expect(policy.annotations.id, policy.id).toBe(policy.id);
      expect(policy.annotations.reason, policy.id).toMatch(/\S/);
    }
  });

  it('both layouts report the same version', () => {
    expect(engines[1]![1].version).toBe(engine.version);
    expect(engine.version).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});
