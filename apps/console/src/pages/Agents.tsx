import { type FormEvent, useEffect, useId, useRef, useState } from 'react';
import { type AgentRecord, api, type SuspendResult } from '../api';
import { DateTime, ErrorNote, Loading, RowActionToggle, useFetched } from '../components/common';
import { Untrusted } from '../components/Untrusted';

export function AgentsPage() {
  const { data, error, reload } = useFetched(api.agents);
  const items = data?.items ?? null;
  const [suspending, setSuspending] = useState<string | null>(null);
  const [done, setDone] = useState<{ id: string; result: SuspendResult } | null>(null);

  return (
    <section>
      <h1 tabIndex={-1}>Agents</h1>
      <p className="muted">
        Registered workload identities. Suspending an agent revokes every lease it holds and cancels its
        pending requests.
      </p>
      <div role="status" aria-live="polite">
        {done && (
          <p className="note note-allowed">
            Suspended <Untrusted text={done.id} identifier />: {done.result.revoked_leases}{' '}
            {done.result.revoked_leases === 1 ? 'lease' : 'leases'} revoked, {done.result.cancelled_requests}{' '}
            pending {done.result.cancelled_requests === 1 ? 'request' : 'requests'} cancelled.
          </p>
        )}
      </div>
      {error != null && <ErrorNote error={error} title="Could not load the agents." />}
      {items === null ? (
        error == null && <Loading label="Loading agents…" />
      ) : items.length === 0 ? (
        <div className="empty card">
          <p>No agents registered yet.</p>
        </div>
      ) : (
        <table className="reviews agents">
          <caption className="sr-only">Agents, {items.length} shown</caption>
          <thead>
            <tr>
              <th scope="col">Agent id</th>
              <th scope="col">Owner</th>
              <th scope="col">Boundary</th>
              <th scope="col">Environment</th>
              <th scope="col">Status</th>
              <th scope="col">Registered</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.flatMap((agent) => {
              const rows = [
                <tr key={agent.id}>
                  <td data-label="Agent id" className="cell-id">
                    <div className="cell">
                      <Untrusted text={agent.id} identifier />
                    </div>
                  </td>
                  <td data-label="Owner">
                    <div className="cell">{agent.owner}</div>
                  </td>
                  <td data-label="Boundary">
                    <div className="cell">{agent.boundary}</div>
                  </td>
                  <td data-label="Environment">
                    <div className="cell">{agent.environment}</div>
                  </td>
                  <td data-label="Status">
                    <div className="cell">
                      <span className={`status status-agent-${agent.status}`}>{agent.status}</span>
                    </div>
                  </td>
                  <td data-label="Registered">
                    <div className="cell">
                      <DateTime iso={agent.created_at} />
                    </div>
                  </td>
                  <td className="cell-actions">
                    {agent.status === 'active' && (
                      <RowActionToggle
                        label="Suspend"
                        accessibleLabel={`Suspend agent ${agent.id}`}
                        open={suspending === agent.id}
                        onToggle={() => {
                          setDone(null);
                          setSuspending(suspending === agent.id ? null : agent.id);
                        }}
                      />
                    )}
                  </td>
                </tr>,
              ];
              if (suspending === agent.id) {
                rows.push(
                  <tr key={`${agent.id}:suspend`} className="suspend-row">
                    <td colSpan={7}>
                      <SuspendForm
                        agent={agent}
                        onCancel={() => setSuspending(null)}
                        onDone={(result) => {
                          setSuspending(null);
                          setDone({ id: agent.id, result });
                          reload();
                        }}
                      />
                    </td>
                  </tr>,
                );
              }
              return rows;
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function SuspendForm({
  agent,
  onCancel,
  onDone,
}: {
  agent: AgentRecord;
  onCancel: () => void;
  onDone: (result: SuspendResult) => void;
}) {
  const [reason, setReason] = useState('');
  const [step, setStep] = useState<'reason' | 'confirm'>('reason');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const reasonId = useId();
  const titleId = useId();
  const textareaRef = useRef<HTMLTextAreaElement>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    (step === 'reason' ? textareaRef.current : confirmRef.current)?.focus();
  }, [step]);

  const next = (event: FormEvent) => {
    event.preventDefault();
    if (reason.trim()) setStep('confirm');
  };

  const suspend = async () => {
    setBusy(true);
    setError(null);
    try {
      onDone(await api.suspendAgent(agent.id, reason.trim()));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <fieldset className="suspend" aria-labelledby={titleId}>
      <h2 id={titleId} className="h3">
        Suspend <Untrusted text={agent.id} identifier />
      </h2>
      {step === 'reason' ? (
        <form onSubmit={next}>
          <div className="field">
            <label htmlFor={reasonId}>Reason (recorded in the audit log)</label>
            <textarea
              id={reasonId}
              ref={textareaRef}
              value={reason}
              onChange={(e) => setReason(e.target.value)}
              required
              rows={3}
              maxLength={1000}
            />
          </div>
          <div className="decision-buttons">
            <button type="submit" className="button button-deny" disabled={!reason.trim()}>
              Continue
            </button>
            <button type="button" className="button" onClick={onCancel}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <p>
            <strong>Suspend this agent now?</strong> Every lease it holds is revoked at once and its pending
            requests are cancelled. Owner: {agent.owner}. Reason: “{reason.trim()}”.
          </p>
          <div className="decision-buttons">
            <button
              ref={confirmRef}
              type="button"
              className="button button-deny"
              onClick={() => void suspend()}
              disabled={busy}
            >
              {busy ? 'Suspending…' : 'Yes, suspend agent'}
            </button>
            <button type="button" className="button" onClick={() => setStep('reason')} disabled={busy}>
              Back
            </button>
          </div>
        </>
      )}
      {error != null && <ErrorNote error={error} title="The agent was not suspended." />}
    </fieldset>
  );
}
