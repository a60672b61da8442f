import { useCallback, useState } from 'react';
import { api, type ReviewerLoadReport } from '../api';
import { BarChart, HourChart } from '../components/Charts';
import { ErrorNote, Loading, SelectFilter, useFetched } from '../components/common';
import { Untrusted } from '../components/Untrusted';

const WINDOWS = [
  { value: '24h', label: 'Last 24 hours' },
  { value: '7d', label: 'Last 7 days' },
  { value: '30d', label: 'Last 30 days' },
] as const;

const pct = (v: number | null) => (v === null ? '–' : `${Math.round(v * 100)}%`);
const secs = (v: number | null) =>
  v === null
    ? '–'
    : v < 120
      ? `${Math.round(v)} s`
      : v < 7200
        ? `${Math.round(v / 60)} min`
        : `${(v / 3600).toFixed(1)} h`;

/**
 * Reviewer load: where the human load comes from, and whether review is still review.
 * Quick votes (seconds after opening the evidence) and votes without opening it are
 * rubber-stamp signals (OWASP Agentic T10, "overwhelming human in the loop").
 */
export function LoadPage() {
  const [window, setWindow] = useState<string>('7d');
  const { data: report, error, reload } = useFetched(useCallback(() => api.analytics(window), [window]));

  return (
    <section>
      <h1 tabIndex={-1}>Reviewer load</h1>
      <p className="muted">
        People should see exceptions, not routine. Where reviews come from, how long they wait, and signs that
        review has become rubber-stamping.
      </p>
      <SelectFilter
        label="Window"
        formLabel="Choose a window"
        value={window}
        options={WINDOWS}
        onChange={setWindow}
        onRefresh={reload}
      />
      {error != null && <ErrorNote error={error} title="Could not load the reviewer load." />}
      {report === null ? (
        error == null && <Loading label="Loading reviewer load…" />
      ) : (
        <LoadReport report={report} />
      )}
    </section>
  );
}

function LoadReport({ report }: { report: ReviewerLoadReport }) {
  const stamped = report.reviewers.reduce((n, r) => n + r.quick_votes + r.unopened_votes, 0);
  const votes = report.reviewers.reduce((n, r) => n + r.votes, 0);
  return (
    <>
      <dl className="kpis card" data-field="kpis">
        <div>
          <dt>Requests</dt>
          <dd data-kpi="requests">{report.requests}</dd>
        </div>
        <div>
          <dt>Reached a person</dt>
          <dd data-kpi="human-share">
            {pct(report.human_share)} <span className="muted small">({report.reviews})</span>
          </dd>
        </div>
        <div>
          <dt>Open reviews</dt>
          <dd data-kpi="open">{report.groups.reduce((n, g) => n + g.queue_depth, 0)}</dd>
        </div>
        <div>
          <dt>Expired undecided</dt>
          <dd data-kpi="expired">{report.groups.reduce((n, g) => n + g.expired, 0)}</dd>
        </div>
        <div>
          <dt>Rubber-stamp signals</dt>
          <dd data-kpi="rubber-stamp" className={stamped > 0 ? 'kpi-warn' : undefined}>
            {stamped} <span className="muted small">of {votes} votes</span>
          </dd>
        </div>
      </dl>

      <div className="charts">
        <BarChart
          title="Open reviews by group"
          bars={report.groups.map((g) => ({
            label: g.group,
            value: g.queue_depth,
            tone: g.queue_depth > 10 ? 'danger' : g.queue_depth > 3 ? 'warn' : 'normal',
          }))}
        />
        <BarChart
          title="Time to decision by group (median, p90 behind)"
          unit=" s"
          secondaryLabel="p90"
          bars={report.groups
            .filter((g) => g.time_to_decision.count > 0)
            .map((g) => ({
              label: g.group,
              value: Math.round(g.time_to_decision.median_seconds ?? 0),
              secondary:
                g.time_to_decision.p90_seconds === null ? null : Math.round(g.time_to_decision.p90_seconds),
            }))}
        />
        <BarChart
          title="Escalation rate by agent (share of its requests sent to a person)"
          unit="%"
          max={100}
          bars={report.agents.slice(0, 12).map((a) => ({
            label: a.agent_id,
            value: Math.round(a.escalation_rate * 100),
            tone: a.escalation_rate > 0.5 ? 'warn' : 'normal',
            note: a.pending > 0 ? `(${a.pending} open)` : '',
          }))}
        />
        <HourChart title="Votes by hour of day (UTC; working hours shaded)" counts={report.votes_by_hour} />
      </div>

      <h2>Groups</h2>
      <table className="reviews load-table" data-table="groups">
        <caption className="sr-only">Reviewer groups</caption>
        <thead>
          <tr>
            <th scope="col">Group</th>
            <th scope="col">Open</th>
            <th scope="col">Decided / h</th>
            <th scope="col">Median · p90</th>
            <th scope="col">Approved</th>
            <th scope="col">Expired</th>
            <th scope="col">Quick · unopened</th>
            <th scope="col">Out of hours</th>
          </tr>
        </thead>
        <tbody>
          {report.groups.map((g) => (
            <tr key={g.group} data-group={g.group}>
              <td data-label="Group">
                <Untrusted text={g.group} identifier />
              </td>
              <td data-label="Open">{g.queue_depth}</td>
              <td data-label="Decided / h">{g.decisions_per_hour.toFixed(1)}</td>
              <td data-label="Median · p90">
                {secs(g.time_to_decision.median_seconds)} · {secs(g.time_to_decision.p90_seconds)}
              </td>
              <td data-label="Approved">{pct(g.approval_rate)}</td>
              <td data-label="Expired">{g.expired}</td>
              <td data-label="Quick · unopened">
                {g.quick_votes} · {g.unopened_votes}
              </td>
              <td data-label="Out of hours">{g.out_of_hours_votes}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Reviewers</h2>
      <table className="reviews load-table" data-table="reviewers">
        <caption className="sr-only">Reviewers</caption>
        <thead>
          <tr>
            <th scope="col">Reviewer</th>
            <th scope="col">Waiting on them</th>
            <th scope="col">Votes</th>
            <th scope="col">Approved</th>
            <th scope="col">Median · p90</th>
            <th scope="col">Quick</th>
            <th scope="col">Unopened</th>
            <th scope="col">Out of hours</th>
          </tr>
        </thead>
        <tbody>
          {report.reviewers.map((r) => (
            <tr key={r.reviewer_id} data-reviewer={r.email ?? r.reviewer_id}>
              <td data-label="Reviewer">
                <Untrusted text={r.email ?? r.reviewer_id} identifier />
                <div className="muted small">{r.groups.join(', ')}</div>
              </td>
              <td data-label="Waiting on them">{r.queue_depth}</td>
              <td data-label="Votes">{r.votes}</td>
              <td data-label="Approved">{pct(r.approval_rate)}</td>
              <td data-label="Median · p90">
                {secs(r.time_to_decision.median_seconds)} · {secs(r.time_to_decision.p90_seconds)}
              </td>
              <td data-label="Quick" className={r.quick_votes > 0 ? 'kpi-warn' : undefined}>
                {r.quick_votes}
              </td>
              <td data-label="Unopened" className={r.unopened_votes > 0 ? 'kpi-warn' : undefined}>
                {r.unopened_votes}
              </td>
              <td data-label="Out of hours">{r.out_of_hours_votes}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
