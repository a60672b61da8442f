import { useCallback, useEffect, useRef, useState } from 'react';
import { api, type ReviewSummary } from '../api';
import { Countdown, ErrorNote, Loading, RiskBadge, StatusBadge } from '../components/common';
import { Untrusted } from '../components/Untrusted';
import { type LiveState, useReviewEvents } from '../events';
import { formatTime } from '../format';
import { href } from '../route';

const LIVE_LABEL: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
};

export function QueuePage() {
  const [items, setItems] = useState<ReviewSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const sequence = useRef(0);

  const load = useCallback(async (announce: boolean) => {
    const mine = ++sequence.current;
    try {
      const { items } = await api.reviews();
      if (mine !== sequence.current) return;
      const now = new Date();
      setItems(items);
      setError(null);
      setUpdatedAt(now);
      if (announce) {
        setAnnouncement(
          `Queue updated at ${formatTime(now)}: ${items.length} pending ${items.length === 1 ? 'review' : 'reviews'}.`,
        );
      }
    } catch (e) {
      if (mine === sequence.current) setError(e);
    }
  }, []);

  useEffect(() => {
    void load(false);
  }, [load]);

  const live = useReviewEvents(() => void load(true));

  return (
    <section>
      <div className="page-head">
        <h1 tabIndex={-1}>Pending reviews</h1>
        <p className={`live live-${live}`}>
          <span className="live-dot" aria-hidden="true" />
          <span>{LIVE_LABEL[live]}</span>
          {updatedAt && (
            <span key={updatedAt.getTime()} className="updated">
              · updated <time dateTime={updatedAt.toISOString()}>{formatTime(updatedAt)}</time>
            </span>
          )}
          <button type="button" className="button button-quiet button-small" onClick={() => void load(true)}>
            Refresh
          </button>
        </p>
      </div>
      <p className="sr-only" role="status" aria-live="polite">
        {announcement}
      </p>
      <p className="muted">
        Requests the checkpoint sent to your groups, highest risk first, then earliest deadline.
      </p>
      {error != null && <ErrorNote error={error} title="Could not load the queue." />}
      {items === null ? (
        error == null && <Loading label="Loading the queue…" />
      ) : items.length === 0 ? (
        <div className="empty card">
          <p>
            <strong>Nothing to review.</strong> New requests appear here as soon as the checkpoint sends them
            to review.
          </p>
        </div>
      ) : (
        <ReviewTable items={items} mode="queue" />
      )}
    </section>
  );
}

/** The queue's and history's table; on narrow screens each row becomes a card. */
export function ReviewTable({ items, mode }: { items: ReviewSummary[]; mode: 'queue' | 'history' }) {
  return (
    <table className="reviews">
      <caption className="sr-only">
        {mode === 'queue' ? 'Pending reviews' : 'Decided reviews'}, {items.length} shown
      </caption>
      <thead>
        <tr>
          <th scope="col">Risk</th>
          <th scope="col">Agent</th>
          <th scope="col">Action</th>
          <th scope="col">Resource</th>
          <th scope="col">{mode === 'queue' ? 'Deadline' : 'Outcome'}</th>
          <th scope="col">Approvals</th>
          <th scope="col">
            <span className="sr-only">Open</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {items.map((item) => (
          <tr key={item.request_id}>
            <td data-label="Risk">
              <div className="cell">
                <RiskBadge score={item.risk_score} />
              </div>
            </td>
            <td data-label="Agent" className="cell-id">
              <div className="cell">
                <Untrusted text={item.agent_id} identifier />
              </div>
            </td>
            <td data-label="Action">
              <div className="cell">
                <Untrusted text={item.action} identifier />
              </div>
            </td>
            <td data-label="Resource" className="cell-id">
              <div className="cell">
                <Untrusted text={item.resource} identifier />
              </div>
            </td>
            <td data-label={mode === 'queue' ? 'Deadline' : 'Outcome'}>
              <div className="cell">
                {mode === 'queue' ? (
                  <Countdown to={item.deadline_at} />
                ) : (
                  <StatusBadge status={item.status} />
                )}
              </div>
            </td>
            <td data-label="Approvals">
              <div className="cell">
                {item.approvals_given} of {item.approvals_needed}
                <span className="muted small block">{item.reviewer_group}</span>
              </div>
            </td>
            <td className="cell-open">
              <a className="row-link" href={href.request(item.request_id)}>
                Open<span className="sr-only"> request {item.request_id}</span>
                <span aria-hidden="true"> →</span>
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
