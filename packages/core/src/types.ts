/** Domain values. Names follow DESIGN.md's vocabulary; all values are plain and immutable. */

export const ACTION_CLASSES = ['read', 'write', 'delete', 'admin', 'export', 'share', 'other'] as const;
export type ActionClass = (typeof ACTION_CLASSES)[number];

export const SENSITIVITIES = ['public', 'internal', 'confidential', 'restricted'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];

export type Outcome = 'allow' | 'deny' | 'review';

/** Where an access request is in its life. `pending` is the only non-terminal state. */
export type RequestStatus = 'pending' | 'allowed' | 'denied' | 'expired' | 'withdrawn' | 'cancelled';
export const TERMINAL_STATUSES: readonly RequestStatus[] = [
  'allowed',
  'denied',
  'expired',
  'withdrawn',
  'cancelled',
];

export type AgentStatus = 'active' | 'suspended';

export interface Agent {
  readonly id: string;
  readonly owner: string;
  readonly boundary: string;
  readonly environment: string;
  readonly trustTier: string;
  readonly status: AgentStatus;
  /** The agent's registered public key (JWK, Ed25519) for private-key JWT assertions. */
  readonly publicJwk: Readonly<Record<string, unknown>>;
  readonly jwkThumbprint: string;
  readonly createdAt: string;
}

export interface ToolCall {
  readonly tool: string;
  /** Where the tool's input came from, as the agent claims it: `untrusted` marks web fetches, inbound mail and the like. */
  readonly source?: string | undefined;
  readonly summary?: string | undefined;
}

/** What the agent asked for, after ingress validation. Everything here is the agent's claim. */
export interface AccessRequestInput {
  readonly action: string;
  readonly resource: string;
  readonly intent: {
    readonly purpose: string;
    readonly task_id: string;
    readonly ticket?: string | undefined;
  };
  readonly context: {
    readonly environment?: string | undefined;
    readonly on_behalf_of?: string | undefined;
    readonly tool_chain?: readonly ToolCall[] | undefined;
    readonly model_output?: string | undefined;
    /** The MCP tool call this request stands for, when the MCP gateway sent it. */
    readonly tool_call?: McpToolCallClaim | undefined;
  };
  readonly ttl_seconds?: number | undefined;
}

/** An MCP tool call as the gateway describes it; `arguments` is RFC 8785 canonical JSON. */
export interface McpToolCallClaim {
  readonly server: string;
  readonly tool: string;
  readonly arguments: string;
  readonly call_digest: string;
  readonly session?: string | undefined;
  readonly client?: string | undefined;
}

/** Operator-owned facts about a resource. The agent's claims never override these. */
export interface ResourceFacts {
  readonly sensitivity: Sensitivity;
  readonly environment: string;
  readonly owner: string;
  readonly boundary: string;
  readonly audience: string;
  /** The configured issuer that makes credentials for this resource (catalog `issuer:`). */
  readonly issuer: string;
  /** The catalog entry's pattern, or null when no entry matched. */
  readonly pattern: string | null;
}

export interface RiskFactor {
  readonly name: string;
  readonly weight: number;
  readonly detail: string;
}

export interface RiskAssessment {
  readonly score: number;
  readonly factors: readonly RiskFactor[];
}

export interface Obligations {
  /** Longest credential lifetime this decision allows, in seconds. */
  readonly maxTtlSeconds: number;
  /** Approvals needed (review only). */
  readonly approvals: number;
  /** Reviewer group (review only). */
  readonly reviewerGroup: string | null;
  /** How long a review may stay open, in seconds (review only). */
  readonly deadlineSeconds: number;
  /** Separation-of-duties rules the policy asked for, such as `owner`. */
  readonly separation: readonly string[];
}

export interface DeterminingPolicy {
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  readonly reason: string | null;
}

/** A decision is a value: a deny is a normal result, not an exception. */
export interface Decision {
  readonly outcome: Outcome;
  readonly determiningPolicies: readonly DeterminingPolicy[];
  readonly reasons: readonly string[];
  readonly obligations: Obligations;
  readonly policyVersion: string;
  /** Set when the decision is a deny because something failed (fail closed), e.g. CS_POLICY_ERROR. */
  readonly errorCode: string | null;
  /** What failed, for operators and the audit trail; never sent to the agent. */
  readonly errorDetail?: string;
}
