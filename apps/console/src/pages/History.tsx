import { type FormEvent, useCallback, useEffect, useId, useState } from 'react';
import { api, type ReviewSummary } from '../api';
import { ErrorNote, Loading } from '../components/common';
import { ReviewTable } from './Queue';

const STATUSES = ['allowed', 'denied', 'expired', 'withdrawn', 'cancelled'] as const;

export function HistoryPage() {
  const [status, setStatus] = useState('');
  const [agent, setAgent] = useState('');
  const [items, setItems] = useState<ReviewSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const statusId = useId();
  const agentId = useId();

  const load = useCallback(async (filter: { status: string; agent: string }) => {
    setBusy(true);
    try {
      const { items } = await api.history({ status: filter.status, agent: filter.agent.trim(), limit: 100 });
      setItems(items);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);

  useEffect(() => {
    void load({ status: '', agent: '' });
  }, [load]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void load({ status, agent });
  };

  return (
    <section>
      <h1 tabIndex={-1}>History</h1>
      <p className="muted">Requests that went to review and have ended, newest first.</p>
      <form className="filters card" onSubmit={submit} aria-label="Filter history">
        <div className="field">
          <label htmlFor={statusId}>Outcome</label>
          <select id={statusId} value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">Any outcome</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field field-grow">
          <label htmlFor={agentId}>Agent id</label>
          <input
            id={agentId}
            type="text"
            value={agent}
            onChange={(e) => setAgent(e.target.value)}
            placeholder="spiffe://acme.dev/agent/invoice-bot"
            autoComplete="off"
            spellCheck={false}
          />
        </div>
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? 'Loading…' : 'Apply filters'}
        </button>
      </form>
      {error != null && <ErrorNote error={error} title="Could not load the history." />}
      <div role="status" aria-live="polite" className="sr-only">
        {items && !busy ? `${items.length} decided ${items.length === 1 ? 'review' : 'reviews'} shown.` : ''}
      </div>
      {items === null ? (
        error == null && <Loading label="Loading the history…" />
      ) : items.length === 0 ? (
        <div className="empty card">
          <p>No decided reviews match these filters.</p>
        </div>
      ) : (
        <ReviewTable items={items} mode="history" />
      )}
    </section>
  );
}
