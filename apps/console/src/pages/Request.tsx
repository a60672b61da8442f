import { type ReactNode, useCallback, useEffect, useRef, useState } from 'react';
import {
  api,
  type DecisionResult,
  decideWithPasskey,
  type EvidencePack,
  type McpToolCall,
  type ToolCall,
  type Verdict,
} from '../api';
import { Countdown, DateTime, ErrorNote, Loading, RiskBadge, StatusBadge } from '../components/common';
import { Untrusted } from '../components/Untrusted';
import { useReviewEvents } from '../events';
import { formatDuration } from '../format';
import { href } from '../route';

/** `#/requests/<id>`: the evidence pack and the passkey-signed decision. */
export function RequestPage({ id }: { id: string }) {
  const [pack, setPack] = useState<EvidencePack | null>(null);
  const [error, setError] = useState<unknown>(null);
  const sequence = useRef(0);

  const load = useCallback(async () => {
    const mine = ++sequence.current;
    try {
      const next = await api.request(id);
      if (mine !== sequence.current) return;
      setPack(next);
      setError(null);
    } catch (e) {
      if (mine === sequence.current) setError(e);
    }
  }, [id]);

  useEffect(() => {
    void load();
  }, [load]);

  useReviewEvents((event) => {
    if (event === null || event.request_id === id) void load();
  });

  if (!pack) {
    return (
      <section>
        <p className="crumbs">
          <a href={href.queue}>← Queue</a>
        </p>
        <h1 tabIndex={-1}>Request</h1>
        {error != null ? (
          <ErrorNote error={error} title="Could not load this request." />
        ) : (
          <Loading label="Loading the evidence pack…" />
        )}
      </section>
    );
  }

  return (
    <article className="request" aria-labelledby="request-title">
      <p className="crumbs">
        <a href={href.queue}>← Queue</a>
      </p>
      <header className="request-head">
        <h1 id="request-title" tabIndex={-1}>
          Review request <code className="id">{pack.request_id}</code>
        </h1>
        <p className="request-summary">
          <span className="summary-label">Agent</span> <Untrusted text={pack.agent.id} identifier />{' '}
          <span className="summary-label">asks to</span>{' '}
          <strong className="action-word">
            <Untrusted text={pack.action} identifier />
          </strong>{' '}
          <span className="summary-label">on</span> <Untrusted text={pack.resource.uri} identifier />
        </p>
        <p className="request-meta">
          <StatusBadge status={pack.status} /> <RiskBadge score={pack.risk.score} />{' '}
          {pack.status === 'pending' && <Countdown to={pack.deadline_at} />}
          <button type="button" className="button button-small jump-decision" onClick={jumpToDecision}>
            Go to decision ↓
          </button>
        </p>
      </header>
      {error != null && <ErrorNote error={error} title="Could not refresh this request." />}

      <div className="request-layout">
        <div className="request-main">
          <FactsSection pack={pack} />
          <NoveltySection pack={pack} />
          <ClaimsSection pack={pack} />
          <RiskSection pack={pack} />
          <PoliciesSection pack={pack} />
          <ObligationsSection pack={pack} />
          <DigestSection pack={pack} />
        </div>
        <DecisionPanel pack={pack} onDecided={() => void load()} />
      </div>
    </article>
  );
}

/** On narrow screens the decision panel comes after the evidence: this jumps to it. */
function jumpToDecision() {
  const heading = document.getElementById('decision-title');
  heading?.scrollIntoView({ block: 'start' });
  heading?.focus({ preventScroll: true });
}

function Fact({ label, field, children }: { label: string; field?: string; children: ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd data-field={field}>{children}</dd>
    </div>
  );
}

function Section({
  id,
  title,
  tag,
  children,
}: {
  id: string;
  title: string;
  tag?: ReactNode;
  children: ReactNode;
}) {
  return (
    <section className="card pack-section" aria-labelledby={id}>
      <div className="section-head">
        <h2 id={id}>{title}</h2>
        {tag}
      </div>
      {children}
    </section>
  );
}

/** A registry or catalog fact that may be missing. */
function known(value: string | null | undefined): ReactNode {
  return value == null || value === '' ? <span className="ut-empty">unknown</span> : value;
}

const VerifiedTag = () => <span className="tag tag-verified">✓ Verified by Countersign</span>;

function FactsSection({ pack }: { pack: EvidencePack }) {
  const { agent, resource } = pack;
  return (
    <Section id="facts" title="Agent, action and resource" tag={<VerifiedTag />}>
      <p className="muted small">
        From Countersign's agent registry and the operator's resource catalog. The agent cannot change these.
      </p>
      <div className="facts-grid">
        <div>
          <h3>Agent</h3>
          <dl className="facts">
            <Fact label="Agent id" field="agent_id">
              <Untrusted text={agent.id} identifier />
            </Fact>
            <Fact label="Accountable owner">{known(agent.owner)}</Fact>
            <Fact label="Boundary">{known(agent.boundary)}</Fact>
            <Fact label="Environment">{known(agent.environment)}</Fact>
            <Fact label="Status">{agent.status}</Fact>
          </dl>
        </div>
        <div>
          <h3>Action and resource</h3>
          <dl className="facts">
            <Fact label="Action">
              <Untrusted text={pack.action} identifier />{' '}
              <span className="muted">(class {pack.action_class})</span>
            </Fact>
            <Fact label="Resource" field="resource">
              <Untrusted text={resource.uri} identifier />
            </Fact>
            <Fact label="Sensitivity">
              <span className={`sensitivity sensitivity-${resource.sensitivity}`}>
                {known(resource.sensitivity)}
              </span>
            </Fact>
            <Fact label="Environment">{known(resource.environment)}</Fact>
            <Fact label="Owning team">{known(resource.owner)}</Fact>
            <Fact label="Boundary">
              {known(resource.boundary)}
              {resource.boundary !== agent.boundary && (
                <span className="badge badge-warn">
                  crosses the agent's boundary ({agent.boundary ?? 'unknown'})
                </span>
              )}
            </Fact>
            <Fact label="Catalog entry">
              {resource.catalog_pattern === null ? (
                <span className="badge badge-warn">no catalog entry matches this resource</span>
              ) : (
                <code className="id">{resource.catalog_pattern}</code>
              )}
            </Fact>
          </dl>
        </div>
      </div>
    </Section>
  );
}

function NoveltySection({ pack }: { pack: EvidencePack }) {
  const rows: [boolean, ReactNode][] = [
    [
      pack.novelty.first_action,
      <>
        this action (<Untrusted text={pack.action} identifier />) for this agent
      </>,
    ],
    [pack.novelty.first_resource, <>this resource for this agent</>],
    [
      pack.novelty.first_environment,
      <>this environment ({pack.resource.environment ?? 'unknown'}) for this agent</>,
    ],
  ];
  const anyNew = rows.some(([isNew]) => isNew);
  return (
    <Section id="novelty" title="What is new" tag={<VerifiedTag />}>
      <p className="muted small">Compared with this agent's earlier approved requests.</p>
      <ul className="novelty">
        {rows.map(([isNew, text], index) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: fixed list of three
          <li key={index} className={isNew ? 'is-new' : 'is-seen'}>
            <span className={isNew ? 'tag tag-new' : 'tag tag-seen'}>
              {isNew ? 'First time' : 'Seen before'}
            </span>{' '}
            {text}
          </li>
        ))}
      </ul>
      {!anyNew && (
        <p className="small">Nothing new: this agent has had this kind of request approved before.</p>
      )}
    </Section>
  );
}

function SourceTag({ source }: { source: ToolCall['source'] }) {
  if (source === 'untrusted') return <span className="badge badge-danger">⚠ untrusted source</span>;
  if (source === 'trusted') return <span className="badge badge-neutral">source claimed trusted</span>;
  return <span className="badge badge-warn">source unknown</span>;
}

/** Indented for reading; the digest covers the canonical text, which `title` names. */
function readableArguments(canonical: string): string {
  try {
    return JSON.stringify(JSON.parse(canonical), null, 2);
  } catch {
    return canonical;
  }
}

function McpToolCallFact({ call }: { call: McpToolCall }) {
  return (
    <Fact label="MCP tool call (the call waits for your decision)" field="tool_call">
      <div className="tool-call">
        <div>
          <span className="tool-label">Server</span> <Untrusted text={call.server} identifier />{' '}
          <span className="tool-label">Tool</span> <Untrusted text={call.tool} identifier />
        </div>
        <div>
          <span className="tool-label">Client</span> <Untrusted text={call.client} identifier />{' '}
          <span className="tool-label">Session</span> <Untrusted text={call.session} identifier />
        </div>
        <div className="tool-arguments" data-field="tool_arguments">
          <span className="tool-label">Arguments (exactly these: other arguments need another review)</span>
          <Untrusted text={readableArguments(call.arguments)} limit={4000} />
        </div>
        <div>
          <span className="tool-label">Call digest (server, tool, arguments)</span>{' '}
          <code className="digest" data-field="tool_call_digest">
            {call.call_digest}
          </code>
        </div>
      </div>
    </Fact>
  );
}

function ClaimsSection({ pack }: { pack: EvidencePack }) {
  const { claims } = pack;
  return (
    <section className="claims" aria-labelledby="claims-title">
      <div className="section-head">
        <h2 id="claims-title">The agent's claims (unverified)</h2>
        <span className="tag tag-unverified">Unverified: written by the agent</span>
      </div>
      <p className="claims-note">
        Everything in this box was sent by the agent, or by content it read. Countersign has not checked any
        of it. Read it as data: instructions inside it are not addressed to you. Hidden characters are shown
        as <span className="ut-hidden">⟨U+XXXX⟩</span>.
      </p>
      <dl className="claims-list">
        <Fact label="Purpose" field="purpose">
          <Untrusted text={claims.purpose} />
        </Fact>
        <Fact label="Task id" field="task_id">
          <Untrusted text={claims.task_id} identifier />
        </Fact>
        <Fact label="Ticket" field="ticket">
          <Untrusted text={claims.ticket} identifier />
        </Fact>
        <Fact label="On behalf of" field="on_behalf_of">
          <Untrusted text={claims.on_behalf_of} identifier />
        </Fact>
        <Fact label="Claimed environment" field="claimed_environment">
          <Untrusted text={claims.environment} identifier />
        </Fact>
        <Fact label="Requested credential TTL">
          {claims.ttl_seconds == null ? (
            <span className="ut-empty">not provided</span>
          ) : (
            formatDuration(claims.ttl_seconds)
          )}
        </Fact>
        {claims.tool_call && <McpToolCallFact call={claims.tool_call} />}
        <Fact label="Tool chain (most recent last)" field="tool_chain">
          {claims.tool_chain.length === 0 ? (
            <span className="ut-empty">none reported</span>
          ) : (
            <ol className="tool-chain">
              {claims.tool_chain.map((call, index) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: the chain is an ordered, immutable list
                <li key={index} className={call.source === 'untrusted' ? 'tool tool-untrusted' : 'tool'}>
                  <div className="tool-head">
                    <span className="tool-step">{index + 1}.</span> <span className="tool-label">Tool</span>{' '}
                    <Untrusted text={call.tool} identifier /> <SourceTag source={call.source} />
                  </div>
                  <div className="tool-summary">
                    <span className="tool-label">Summary</span>
                    <Untrusted text={call.summary} />
                  </div>
                </li>
              ))}
            </ol>
          )}
        </Fact>
        <Fact label="Model output" field="model_output">
          <Untrusted text={claims.model_output} />
        </Fact>
      </dl>
    </section>
  );
}

function RiskSection({ pack }: { pack: EvidencePack }) {
  return (
    <Section id="risk" title="Risk" tag={<VerifiedTag />}>
      <p className="risk-line">
        <RiskBadge score={pack.risk.score} /> <span className="muted">score {pack.risk.score} of 100</span>
      </p>
      {pack.risk.factors.length === 0 ? (
        <p className="small">No risk factors.</p>
      ) : (
        <ul className="factors" aria-label="Risk factors">
          {pack.risk.factors.map((factor) => (
            <li key={factor.name}>
              <span className="factor-weight">+{factor.weight}</span>
              <code className="factor-name">{factor.name}</code>
              <span className="factor-detail">{factor.detail}</span>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function PoliciesSection({ pack }: { pack: EvidencePack }) {
  return (
    <Section id="policies" title="Why it needs review" tag={<VerifiedTag />}>
      <p className="muted small">
        The determining policies (policy version{' '}
        <code className="id">{shortDigest(pack.policy_version)}</code>).
      </p>
      {pack.policies.length === 0 ? (
        <p className="small">No policy matched: the configured fallback sent this novel request to review.</p>
      ) : (
        <ul className="policies">
          {pack.policies.map((policy) => (
            <li key={policy.id}>
              <div>
                <code className="id">{policy.id}</code>{' '}
                <span className={`tag tag-${policy.effect}`}>{policy.effect}</span>
              </div>
              <p>{policy.reason ?? <span className="ut-empty">no reason given</span>}</p>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function ObligationsSection({ pack }: { pack: EvidencePack }) {
  const { obligations } = pack;
  const approvals = pack.votes.filter((vote) => vote.verdict === 'approve');
  return (
    <Section id="obligations" title="Obligations and votes" tag={<VerifiedTag />}>
      <dl className="facts">
        <Fact label="Credential TTL (at most)">
          {obligations.max_ttl_seconds == null
            ? 'server default'
            : formatDuration(obligations.max_ttl_seconds)}
        </Fact>
        <Fact label="Approvals">
          {approvals.length} given of {obligations.approvals} needed
        </Fact>
        <Fact label="Reviewer group">{obligations.reviewer_group}</Fact>
        <Fact label="Review deadline">
          <DateTime iso={pack.deadline_at} />
          {pack.status === 'pending' && (
            <>
              {' '}
              (<Countdown to={pack.deadline_at} />)
            </>
          )}
          {obligations.deadline_seconds != null && (
            <span className="muted"> · window {formatDuration(obligations.deadline_seconds)}</span>
          )}
        </Fact>
        <Fact label="Separation of duties">
          {obligations.separation.length ? obligations.separation.join(', ') : 'none'}
        </Fact>
      </dl>
      <h3>Votes</h3>
      {pack.votes.length === 0 ? (
        <p className="small">No votes yet.</p>
      ) : (
        <ul className="votes">
          {pack.votes.map((vote) => (
            <li key={`${vote.reviewer_id}:${vote.at}`}>
              <span className={`tag tag-${vote.verdict}`}>
                {vote.verdict === 'approve' ? 'Approved' : 'Denied'}
              </span>{' '}
              <strong>{vote.email}</strong> <code className="id muted">{vote.reviewer_id}</code>{' '}
              <span className="muted">
                <DateTime iso={vote.at} />
              </span>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function DigestSection({ pack }: { pack: EvidencePack }) {
  return (
    <Section id="digest" title="What your passkey signs" tag={<VerifiedTag />}>
      <p className="muted small">
        Your approval or denial is bound to this exact digest. A request that changes gets another digest, and
        no earlier vote applies to it.
      </p>
      <dl className="facts">
        <Fact label="Request digest" field="digest">
          <code className="digest">{pack.digest}</code>
        </Fact>
        <Fact label="Policy version">
          <code className="digest">{pack.policy_version}</code>
        </Fact>
        <Fact label="Request id">
          <code className="id">{pack.request_id}</code>
        </Fact>
        <Fact label="Created">
          <DateTime iso={pack.created_at} />
        </Fact>
      </dl>
    </Section>
  );
}

/** `sha256:3f2a9c1b77de0a41…` → `sha256:3f2a 9c1b 77de 0a41…` for comparing by eye. */
export function shortDigest(digest: string, hexChars = 16): string {
  const match = /^([a-z0-9-]+:)?([0-9a-fA-F]+)$/.exec(digest);
  if (!match) return digest.length > hexChars + 8 ? `${digest.slice(0, hexChars + 7)}…` : digest;
  const hex = match[2]!;
  const groups = hex.slice(0, hexChars).match(/.{1,4}/g) ?? [];
  return `${match[1] ?? ''}${groups.join(' ')}${hex.length > hexChars ? '…' : ''}`;
}

function resultMessage(verdict: Verdict, result: DecisionResult): string {
  if (result.status === 'allowed')
    return 'Approved. The request is allowed; the agent receives a scoped credential.';
  if (result.status === 'denied') {
    return verdict === 'deny' ? 'Denied. The request is closed as denied.' : 'The request was denied.';
  }
  return `Your ${verdict === 'approve' ? 'approval' : 'vote'} was recorded. ${result.approvals_given} of ${result.approvals_needed} approvals given; the review stays open for other reviewers.`;
}

function DecisionPanel({ pack, onDecided }: { pack: EvidencePack; onDecided: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [working, setWorking] = useState<Verdict | null>(null);
  const [result, setResult] = useState<{ verdict: Verdict; result: DecisionResult } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const approveRef = useRef<HTMLButtonElement>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);

  const open = pack.status === 'pending';
  const canDecide = open && pack.can_decide && working === null;
  const approvalsGiven = pack.votes.filter((vote) => vote.verdict === 'approve').length;

  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
  }, [confirming]);
  useEffect(() => {
    if (!pack.can_decide || !open) setConfirming(false);
  }, [pack.can_decide, open]);

  const decide = async (verdict: Verdict) => {
    setWorking(verdict);
    setError(null);
    setResult(null);
    try {
      const outcome = await decideWithPasskey(pack.request_id, verdict);
      setResult({ verdict, result: outcome });
      setConfirming(false);
      onDecided();
    } catch (e) {
      setError(e);
      onDecided(); // the review may have closed meanwhile
    } finally {
      setWorking(null);
    }
  };

  const cancel = () => {
    setConfirming(false);
    window.requestAnimationFrame(() => approveRef.current?.focus());
  };

  const reasonId = `cannot-decide-${pack.request_id}`;
  return (
    <aside className="decision card" aria-labelledby="decision-title">
      <h2 id="decision-title" tabIndex={-1}>
        Your decision
      </h2>
      <dl className="facts compact">
        <Fact label="Status">
          <StatusBadge status={pack.status} />
        </Fact>
        {open && (
          <Fact label="Deadline">
            <Countdown to={pack.deadline_at} />
          </Fact>
        )}
        <Fact label="Approvals">
          {approvalsGiven} of {pack.obligations.approvals}
        </Fact>
      </dl>

      {!open ? (
        <p className="note">This review is closed. No more votes can be cast.</p>
      ) : (
        !pack.can_decide && (
          <p className="note note-warn" id={reasonId}>
            <strong>You cannot decide this request.</strong>{' '}
            {pack.cannot_decide_reason ?? 'The server gave no reason.'}
          </p>
        )
      )}

      {open && !confirming && (
        <div className="decision-buttons">
          <button
            ref={approveRef}
            type="button"
            className="button button-approve"
            disabled={!canDecide}
            aria-describedby={!pack.can_decide ? reasonId : undefined}
            onClick={() => {
              setResult(null);
              setError(null);
              setConfirming(true);
            }}
          >
            Approve
          </button>
          <button
            type="button"
            className="button button-deny"
            disabled={!canDecide}
            aria-describedby={!pack.can_decide ? reasonId : undefined}
            onClick={() => void decide('deny')}
          >
            {working === 'deny' ? 'Waiting for your passkey…' : 'Deny'}
          </button>
        </div>
      )}

      {open && confirming && (
        <fieldset className="confirm" aria-labelledby="confirm-title">
          <h3 id="confirm-title">Confirm approval</h3>
          <p>You are approving exactly this request:</p>
          <dl className="facts compact">
            <Fact label="Action">
              <Untrusted text={pack.action} identifier />
            </Fact>
            <Fact label="Resource">
              <Untrusted text={pack.resource.uri} identifier />
            </Fact>
            <Fact label="Digest">
              <code className="id">{shortDigest(pack.digest)}</code>
            </Fact>
          </dl>
          <p className="small">
            Your passkey signs this digest. If any of this is not what you expect, cancel and deny instead.
          </p>
          <div className="decision-buttons">
            <button
              ref={confirmRef}
              type="button"
              className="button button-approve"
              disabled={!canDecide}
              onClick={() => void decide('approve')}
            >
              {working === 'approve' ? 'Waiting for your passkey…' : 'Approve with passkey'}
            </button>
            <button type="button" className="button" onClick={cancel} disabled={working !== null}>
              Cancel
            </button>
          </div>
        </fieldset>
      )}

      <div className="decision-result" role="status" aria-live="polite">
        {result && (
          <p className={`note note-${result.result.status}`}>
            {resultMessage(result.verdict, result.result)}
          </p>
        )}
      </div>
      {error != null && <ErrorNote error={error} title="Your vote was not recorded." />}
    </aside>
  );
}
