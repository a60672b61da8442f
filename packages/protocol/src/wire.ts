/** Wire shapes of answers. Field names are snake_case as in the OAuth RFCs. */

export type RequestStatusWire = 'pending' | 'allowed' | 'denied' | 'expired' | 'withdrawn' | 'cancelled';

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly details?: Record<string, unknown>;
  };
}

export interface AccessTokenCredential {
  readonly type: 'access_token';
  readonly access_token: string;
  /** `DPoP` when the lease is bound to the agent's DPoP key (RFC 9449 `cnf.jkt`). */
  readonly token_type: 'Bearer' | 'DPoP';
  readonly expires_at: string;
  readonly lease_id: string;
}

/** A lease for the credential proxy: call `proxy_url` + path with the token; the upstream's secret stays in Countersign. */
export interface ProxyCredential {
  readonly type: 'proxy';
  readonly access_token: string;
  /** `DPoP` when the lease is bound to the agent's DPoP key: present it with a proof. */
  readonly token_type: 'Bearer' | 'DPoP';
  readonly proxy_url: string;
  readonly expires_at: string;
  readonly lease_id: string;
}

/** A dynamic PostgreSQL role: connect with these; it is dropped when the lease ends. */
export interface PostgresRoleCredential {
  readonly type: 'postgres_role';
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly expires_at: string;
  readonly lease_id: string;
}

/** A sealed secret's value, released once for this grant. */
export interface SealedSecretCredential {
  readonly type: 'sealed_secret';
  readonly name: string;
  readonly version: number;
  readonly encoding: 'utf8' | 'base64';
  readonly value: string;
  readonly expires_at: string;
  readonly lease_id: string;
}

export type CredentialWire =
  | AccessTokenCredential
  | ProxyCredential
  | PostgresRoleCredential
  | SealedSecretCredential;

export interface DecisionWire {
  readonly outcome: 'allow' | 'deny' | 'review';
  readonly determining_policies: ReadonlyArray<{ id: string; effect: 'permit' | 'forbid' }>;
  readonly reasons: readonly string[];
  readonly obligations: {
    readonly max_ttl_seconds: number;
    readonly approvals: number;
    readonly reviewer_group: string | null;
    readonly deadline_seconds: number;
    readonly separation: readonly string[];
  };
  readonly risk: {
    readonly score: number;
    readonly factors: ReadonlyArray<{ name: string; weight: number; detail: string }>;
  };
  readonly policy_version: string;
  readonly request_digest: string;
  readonly error_code: string | null;
}

export interface AccessRequestWire {
  readonly id: string;
  readonly status: RequestStatusWire;
  readonly agent_id: string;
  readonly action: string;
  readonly resource: string;
  readonly task_id: string;
  readonly created_at: string;
  readonly decided_at: string | null;
  readonly review: { readonly reviewer_group: string | null; readonly deadline_at: string } | null;
  readonly lease_id: string | null;
  readonly decision: DecisionWire;
  /**
   * The MCP tool call this request stands for (server, tool, call digest), when the MCP
   * gateway sent it: a gateway redeeming an approval compares it with the call in hand.
   */
  readonly tool_call?: {
    readonly server: string;
    readonly tool: string;
    readonly call_digest: string;
  };
  readonly credential?: CredentialWire;
  /** The approval receipt (a compact JWS), once the request is allowed after review. */
  readonly receipt?: string;
}
