import { useState } from 'react';
import { adoptWithPasskey, api, type BacktestResult, type ShadowReport, type Suggestion } from '../api';
import { BarChart } from '../components/Charts';
import { ErrorNote, Loading, useFetched } from '../components/common';
import { Untrusted } from '../components/Untrusted';

const CHANGE_LABEL = (key: string) => key.replace('->', ' → ');

const loadInsights = async () => {
  const [suggestions, shadow] = await Promise.all([api.suggestions(), api.shadow('7d')]);
  return { suggestions, shadow };
};

/**
 * Moving routine into policy, safely: suggested permits with their evidence (adopted only
 * with an admin's passkey over the exact text), and what a candidate set would change, on
 * live traffic (shadow mode) and over the recorded history (backtest).
 */
export function PoliciesPage() {
  const { data, error, reload } = useFetched(loadInsights);
  const suggestions = data?.suggestions ?? null;
  const shadow = data?.shadow ?? null;
  const [adopted, setAdopted] = useState<string | null>(null);

  return (
    <section>
      <h1 tabIndex={-1}>Policies</h1>
      <p className="muted">
        People should decide exceptions. Patterns that reviewers approve again and again can move into policy:
        each suggestion is the narrowest permit for one agent, one action and one resource, checked against
        the history. Nothing is adopted without a policy admin’s passkey.
      </p>
      <div role="status" aria-live="polite">
        {adopted && (
          <p className="note note-allowed">Adopted {adopted}. The running policy set now includes it.</p>
        )}
      </div>
      {error != null && <ErrorNote error={error} title="Could not load the policy insights." />}
      <h2>Suggested policies</h2>
      {suggestions === null ? (
        error == null && <Loading label="Mining the review history…" />
      ) : suggestions.items.length === 0 ? (
        <div className="empty card">
          <p>No suggestion: no review pattern was approved often enough without ever being denied.</p>
        </div>
      ) : (
        suggestions.items.map((s) => (
          <SuggestionCard
            key={s.id}
            suggestion={s}
            canAdopt={suggestions.can_adopt}
            adminGroup={suggestions.admin_group}
            onAdopted={(id) => {
              setAdopted(id);
              reload();
            }}
          />
        ))
      )}
      <h2>Shadow mode</h2>
      {shadow === null ? null : <ShadowSection report={shadow} />}
      <h2>Backtest of the candidate set</h2>
      <BacktestSection enabled={shadow?.enabled ?? false} />
    </section>
  );
}

function SuggestionCard({
  suggestion: s,
  canAdopt,
  adminGroup,
  onAdopted,
}: {
  suggestion: Suggestion;
  canAdopt: boolean;
  adminGroup: string;
  onAdopted: (id: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const adopt = async () => {
    setBusy(true);
    setError(null);
    try {
      await adoptWithPasskey(s.id, s.text_sha256);
      onAdopted(s.id);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <article className="card suggestion" data-suggestion={s.id}>
      <h3>
        <Untrusted text={s.agent_id} identifier /> · {s.action} · <Untrusted text={s.resource} identifier />
      </h3>
      <p data-field="evidence">
        <strong>{s.approvals} approvals</strong> by {s.reviewer_group ?? 'reviewers'}, none denied.{' '}
        <strong>{s.evidence.reviews_spared} reviews spared</strong> in the history ({s.evidence.replayed}{' '}
        requests replayed); it <strong>allows nothing a reviewer denied</strong> ({s.evidence.allows_denied})
        and changes no other decision ({s.evidence.other_changes}).
      </p>
      <pre className="policy-text">{s.text.trimEnd()}</pre>
      <p className="muted small">
        Text digest <code>{s.text_sha256}</code>. Riskier variants (score above {s.max_risk_score}, untrusted
        input, another boundary) still go to a person.
      </p>
      {error != null && <ErrorNote error={error} title="Not adopted." />}
      {canAdopt ? (
        <button type="button" className="button button-primary" disabled={busy} onClick={() => void adopt()}>
          {busy ? 'Waiting for your passkey…' : 'Adopt with passkey'}
        </button>
      ) : (
        <p className="muted">Only members of {adminGroup} can adopt policies.</p>
      )}
    </article>
  );
}

function ChangeChart({ title, changes }: { title: string; changes: Record<string, number> }) {
  return (
    <BarChart
      title={title}
      bars={Object.entries(changes)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => ({
          label: CHANGE_LABEL(k),
          value: n,
          tone: k.endsWith('->allow') ? 'warn' : 'normal',
        }))}
    />
  );
}

function ShadowSection({ report }: { report: ShadowReport }) {
  if (!report.enabled)
    return (
      <div className="empty card" data-field="shadow">
        <p>
          {report.candidate_error
            ? `The candidate set does not load: ${report.candidate_error}`
            : 'No candidate set. Put one in policies/candidate/ (or set policies.candidate) to evaluate it beside the active set on live traffic, without enforcing it.'}
        </p>
      </div>
    );
  return (
    <div data-field="shadow">
      <p className="muted">
        Candidate <code>{report.candidate_version}</code> decided {report.differences} live requests
        differently in the last 7 days (it enforces nothing).
      </p>
      <ChangeChart title="Live requests the candidate would decide otherwise" changes={report.changes} />
      <Examples examples={report.examples} />
    </div>
  );
}

function BacktestSection({ enabled }: { enabled: boolean }) {
  const [result, setResult] = useState<BacktestResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    try {
      setResult(await api.backtest('30d'));
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div data-field="backtest">
      <button type="button" className="button" disabled={!enabled || busy} onClick={() => void run()}>
        {busy ? 'Replaying…' : 'Replay the last 30 days against the candidate'}
      </button>
      {error != null && <ErrorNote error={error} title="The backtest failed." />}
      {result && (
        <>
          <p>
            {result.replayed} requests replayed: {result.unchanged} unchanged. Reached a person:{' '}
            {result.reviews_before} as recorded, {result.reviews_after} under the candidate.
          </p>
          <ChangeChart
            title="Recorded requests the candidate would decide otherwise"
            changes={result.changes}
          />
          <Examples examples={result.examples} />
        </>
      )}
    </div>
  );
}

function Examples({
  examples,
}: {
  examples: Record<string, Array<{ request_id: string; agent_id: string; action: string; resource: string }>>;
}) {
  const keys = Object.keys(examples).sort();
  if (keys.length === 0) return null;
  return (
    <dl className="examples">
      {keys.map((k) => (
        <div key={k}>
          <dt>{CHANGE_LABEL(k)}</dt>
          {(examples[k] ?? []).map((e) => (
            <dd key={e.request_id}>
              <code>{e.request_id}</code> <Untrusted text={e.agent_id} identifier /> {e.action}{' '}
              <Untrusted text={e.resource} identifier />
            </dd>
          ))}
        </div>
      ))}
    </dl>
  );
}
