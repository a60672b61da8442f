import { useCallback, useEffect, useState } from 'react';
import { type AuditStatus, api } from '../api';
import { ErrorNote, Loading } from '../components/common';
import { formatTime } from '../format';

export function AuditPage() {
  const [status, setStatus] = useState<AuditStatus | null>(null);
  const [checkedAt, setCheckedAt] = useState<Date | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const check = useCallback(async () => {
    setBusy(true);
    try {
      setStatus(await api.audit());
      setCheckedAt(new Date());
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);

  useEffect(() => {
    void check();
  }, [check]);

  return (
    <section className="narrow-wide">
      <h1 tabIndex={-1}>Audit chain</h1>
      <p className="muted">
        Every decision, vote, enrollment and sign-in is an append-only, hash-chained audit event. The server
        verifies the whole chain when you check.
      </p>
      {error != null && <ErrorNote error={error} title="Could not check the audit chain." />}
      <div role="status" aria-live="polite">
        {status === null ? (
          error == null && <Loading label="Verifying the chain…" />
        ) : status.ok ? (
          <div className="card audit audit-ok">
            <h2>✓ Chain intact</h2>
            <dl className="facts">
              <div>
                <dt>Events verified</dt>
                <dd>{status.count.toLocaleString()}</dd>
              </div>
              <div>
                <dt>Head hash</dt>
                <dd>
                  <code className="digest">{status.head_hash}</code>
                </dd>
              </div>
            </dl>
          </div>
        ) : (
          <div className="card audit audit-broken">
            <h2>✕ Chain broken</h2>
            <p>
              The chain does not verify. Treat the events from this point on as untrustworthy and investigate.
            </p>
            <dl className="facts">
              <div>
                <dt>Events checked</dt>
                <dd>{status.count.toLocaleString()}</dd>
              </div>
              <div>
                <dt>First bad sequence number</dt>
                <dd>{status.seq}</dd>
              </div>
              <div>
                <dt>Event id</dt>
                <dd>
                  <code className="id">{status.event_id}</code>
                </dd>
              </div>
              <div>
                <dt>Reason</dt>
                <dd>{status.reason}</dd>
              </div>
            </dl>
          </div>
        )}
      </div>
      <p>
        <button type="button" className="button" onClick={() => void check()} disabled={busy}>
          {busy ? 'Checking…' : 'Check again'}
        </button>{' '}
        {checkedAt && <span className="muted small">Last checked {formatTime(checkedAt)}</span>}
      </p>
    </section>
  );
}
