import { type FormEvent, useCallback, useEffect, useId, useRef, useState } from 'react';
import { api, type LeaseRecord } from '../api';
import {
  DateTime,
  ErrorNote,
  Loading,
  RowActionToggle,
  SelectFilter,
  useFetched,
} from '../components/common';
import { Untrusted } from '../components/Untrusted';

const STATE_LABEL: Record<string, string> = {
  issuing: 'issuing',
  active: 'active',
  expired: 'expired',
  revoke_pending: 'revocation pending',
  revoked: 'revoked',
};

const FILTERS = [
  { value: 'active', label: 'Active' },
  { value: 'revoke_pending', label: 'Revocation pending' },
  { value: 'revoked', label: 'Revoked' },
  { value: '', label: 'All' },
] as const;

/**
 * Leases: what credentials exist right now, and revocations a downstream has not confirmed
 * (they are retried until it does, never dropped). Revoking only ever removes access.
 */
export function LeasesPage() {
  const [status, setStatus] = useState<string>('active');
  const { data, error, reload } = useFetched(useCallback(() => api.leases({ status }), [status]));
  const items = data?.items ?? null;
  const failing = data?.failing_revocations ?? 0;
  const [revoking, setRevoking] = useState<string | null>(null);
  const [done, setDone] = useState<LeaseRecord | null>(null);

  return (
    <section>
      <h1 tabIndex={-1}>Leases</h1>
      <p className="muted">
        Credentials issued to agents, newest first. A lease ends at its TTL, when its task ends, when its
        agent is suspended, or when someone revokes it.
      </p>
      {failing > 0 && (
        <p className="note note-error" role="alert">
          {failing} {failing === 1 ? 'revocation is' : 'revocations are'} failing at the downstream system and
          being retried. Those credentials may still work until their expiry.
        </p>
      )}
      <div role="status" aria-live="polite">
        {done && (
          <p className={`note ${done.status === 'revoked' ? 'note-allowed' : 'note-warn'}`}>
            {done.status === 'revoked'
              ? `Lease ${done.lease_id} revoked.`
              : `Lease ${done.lease_id} ended; its downstream has not confirmed yet and is being retried.`}
          </p>
        )}
      </div>
      <SelectFilter
        label="Status"
        formLabel="Filter leases"
        value={status}
        options={FILTERS}
        onChange={setStatus}
        onRefresh={reload}
      />
      {error != null && <ErrorNote error={error} title="Could not load the leases." />}
      {items === null ? (
        error == null && <Loading label="Loading leases…" />
      ) : items.length === 0 ? (
        <div className="empty card">
          <p>No leases here.</p>
        </div>
      ) : (
        <table className="reviews leases">
          <caption className="sr-only">Leases, {items.length} shown</caption>
          <thead>
            <tr>
              <th scope="col">Lease</th>
              <th scope="col">Agent and task</th>
              <th scope="col">Credential</th>
              <th scope="col">Status</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.flatMap((lease) => {
              const live = lease.status === 'active' || lease.status === 'issuing';
              const rows = [
                <tr key={lease.lease_id} data-lease={lease.lease_id}>
                  <td data-label="Lease" className="cell-id">
                    <div className="cell">
                      <code>{lease.lease_id}</code>
                    </div>
                  </td>
                  <td data-label="Agent and task">
                    <div className="cell">
                      <Untrusted text={lease.agent_id} identifier />
                      <div className="muted">
                        task <Untrusted text={lease.task_id} identifier />
                      </div>
                    </div>
                  </td>
                  <td data-label="Credential">
                    <div className="cell">
                      <strong>{lease.kind}</strong> <span className="muted">via {lease.issuer}</span>
                      {lease.resource && (
                        <div>
                          {lease.action} <Untrusted text={lease.resource} identifier />
                        </div>
                      )}
                    </div>
                  </td>
                  <td data-label="Status">
                    <div className="cell">
                      <span className={`status status-lease-${lease.state}`}>
                        {STATE_LABEL[lease.state] ?? lease.state}
                      </span>
                      {lease.revoke_reason && <div className="muted">{lease.revoke_reason}</div>}
                      {lease.status === 'revoke_pending' && lease.revoke_attempts > 0 && (
                        <div className="revocation-failing">
                          {lease.revoke_attempts} failed{' '}
                          {lease.revoke_attempts === 1 ? 'attempt' : 'attempts'}
                          {lease.last_revoke_error && (
                            <>
                              {' '}
                              (<code>{lease.last_revoke_error}</code>)
                            </>
                          )}
                          {lease.next_revoke_at && (
                            <>
                              ; next <DateTime iso={lease.next_revoke_at} />
                            </>
                          )}
                        </div>
                      )}
                    </div>
                  </td>
                  <td data-label="Expires">
                    <div className="cell">
                      <DateTime iso={lease.expires_at} />
                    </div>
                  </td>
                  <td className="cell-actions">
                    {live && (
                      <RowActionToggle
                        label="Revoke"
                        accessibleLabel={`Revoke lease ${lease.lease_id}`}
                        open={revoking === lease.lease_id}
                        onToggle={() => {
                          setDone(null);
                          setRevoking(revoking === lease.lease_id ? null : lease.lease_id);
                        }}
                      />
                    )}
                  </td>
                </tr>,
              ];
              if (revoking === lease.lease_id) {
                rows.push(
                  <tr key={`${lease.lease_id}:revoke`} className="suspend-row">
                    <td colSpan={6}>
                      <RevokeForm
                        lease={lease}
                        onCancel={() => setRevoking(null)}
                        onDone={(after) => {
                          setRevoking(null);
                          setDone(after);
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

function RevokeForm({
  lease,
  onCancel,
  onDone,
}: {
  lease: LeaseRecord;
  onCancel: () => void;
  onDone: (after: LeaseRecord) => void;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const reasonId = useId();
  const titleId = useId();
  const textareaRef = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    textareaRef.current?.focus();
  }, []);

  const revoke = async (event: FormEvent) => {
    event.preventDefault();
    if (!reason.trim()) return;
    setBusy(true);
    setError(null);
    try {
      onDone((await api.revokeLease(lease.lease_id, reason.trim())).lease);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <fieldset className="suspend" aria-labelledby={titleId}>
      <h2 id={titleId} className="h3">
        Revoke lease <code>{lease.lease_id}</code>
      </h2>
      <form onSubmit={(e) => void revoke(e)}>
        <p>
          The {lease.kind} credential of <Untrusted text={lease.agent_id} identifier /> stops working now
          {lease.kind === 'postgres_role' ? ': its database role is dropped and its sessions are ended' : ''}.
        </p>
        <div className="field">
          <label htmlFor={reasonId}>Reason (recorded in the audit log)</label>
          <textarea
            id={reasonId}
            ref={textareaRef}
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            required
            rows={2}
            maxLength={1000}
          />
        </div>
        <div className="decision-buttons">
          <button type="submit" className="button button-deny" disabled={busy || !reason.trim()}>
            {busy ? 'Revoking…' : 'Revoke now'}
          </button>
          <button type="button" className="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
        </div>
      </form>
      {error != null && <ErrorNote error={error} title="The lease was not revoked." />}
    </fieldset>
  );
}
