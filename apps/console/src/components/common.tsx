import { useCallback, useEffect, useId, useRef, useState } from 'react';
import { describeError } from '../api';
import { formatDateTime, formatDuration, RISK_LABEL, riskLevel, STATUS_LABEL } from '../format';

/** The current time, re-rendered every `intervalMs`. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}

/** Time left until `to`; "expired" once passed. Not a live region: it changes every second. */
export function Countdown({ to }: { to: string }) {
  const now = useNow();
  const end = new Date(to).getTime();
  if (Number.isNaN(end)) return <span>{to}</span>;
  const left = Math.round((end - now) / 1000);
  const urgent = left > 0 && left < 120;
  return (
    <time
      dateTime={to}
      title={`Deadline ${formatDateTime(to)}`}
      className={urgent ? 'countdown urgent' : 'countdown'}
    >
      {left > 0 ? `${formatDuration(left)} left` : 'deadline passed'}
    </time>
  );
}

export function DateTime({ iso }: { iso: string }) {
  return <time dateTime={iso}>{formatDateTime(iso)}</time>;
}

/** Risk as words and number, with color as a second cue only. */
export function RiskBadge({ score }: { score: number }) {
  const level = riskLevel(score);
  return (
    <span className={`risk risk-${level}`}>
      <span className="risk-level">{RISK_LABEL[level]}</span> <span className="risk-score">{score}</span>
    </span>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`status status-${status}`}>{STATUS_LABEL[status] ?? status}</span>;
}

/** A server (or passkey) error with its code. */
export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  const { code, message } = describeError(error);
  return (
    <div className="note note-error" role="alert">
      {title && <strong>{title} </strong>}
      <span>{message}</span> <code className="error-code">{code}</code>
    </div>
  );
}

export function Loading({ label }: { label: string }) {
  return (
    <p className="loading" role="status">
      {label}
    </p>
  );
}

/** A filter card with one select and a Refresh button (which reloads with the current value). */
export function SelectFilter({
  label,
  formLabel,
  value,
  options,
  onChange,
  onRefresh,
}: {
  label: string;
  formLabel: string;
  value: string;
  options: readonly { value: string; label: string }[];
  onChange: (value: string) => void;
  onRefresh: () => void;
}) {
  const id = useId();
  return (
    <form
      className="filters card"
      onSubmit={(event) => {
        event.preventDefault();
        onRefresh();
      }}
      aria-label={formLabel}
    >
      <div className="field">
        <label htmlFor={id}>{label}</label>
        <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
          {options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" className="button">
        Refresh
      </button>
    </form>
  );
}

/**
 * Fetches with `fetch` now and whenever `fetch` changes (wrap it in `useCallback`), and again on
 * `reload()`. Only the newest call's answer or error is kept: a slow answer to an older filter
 * never replaces a newer one. The last answer stays shown beside an error.
 */
export function useFetched<T>(fetch: () => Promise<T>): {
  data: T | null;
  error: unknown;
  reload: () => void;
} {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const sequence = useRef(0);
  const reload = useCallback(() => {
    const mine = ++sequence.current;
    fetch().then(
      (answer) => {
        if (mine !== sequence.current) return;
        setData(answer);
        setError(null);
      },
      (e: unknown) => {
        if (mine === sequence.current) setError(e);
      },
    );
  }, [fetch]);
  useEffect(() => {
    reload();
  }, [reload]);
  return { data, error, reload };
}

/**
 * The quiet danger button at the end of a table row that opens (and closes) the row's
 * confirmation form below it. `label` is shown; `accessibleLabel` names the row's subject.
 */
export function RowActionToggle({
  label,
  accessibleLabel,
  open,
  onToggle,
}: {
  label: string;
  accessibleLabel: string;
  open: boolean;
  onToggle: () => void;
}) {
  return (
    <button
      type="button"
      className="button button-small button-danger-quiet"
      aria-expanded={open}
      onClick={onToggle}
    >
      <span aria-hidden="true">{label}…</span>
      <span className="sr-only">{accessibleLabel}</span>
    </button>
  );
}
