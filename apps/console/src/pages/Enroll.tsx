import { useCallback, useEffect, useState } from 'react';
import { api, completeEnrollment, type EnrollmentInvite, type Reviewer } from '../api';
import { ErrorNote, Loading } from '../components/common';

/** `#/enroll/<token>`: shows whom the invite is for, then registers a passkey on a click. */
export function EnrollPage({
  token,
  onEnrolled,
}: {
  token: string;
  onEnrolled: (reviewer: Reviewer) => void;
}) {
  const [invite, setInvite] = useState<EnrollmentInvite | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    setLoadError(null);
    try {
      setInvite(await api.enrollOptions(token));
    } catch (e) {
      setLoadError(e);
    }
  }, [token]);

  useEffect(() => {
    void load();
  }, [load]);

  const enroll = async () => {
    if (!invite) return;
    setBusy(true);
    setError(null);
    try {
      onEnrolled(await completeEnrollment(token, invite));
    } catch (e) {
      setError(e);
      void load(); // fresh options (a new challenge) for the next try
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="narrow card">
      <h1 tabIndex={-1}>Register your passkey</h1>
      {loadError != null ? (
        <ErrorNote error={loadError} title="This invite cannot be used." />
      ) : !invite ? (
        <Loading label="Checking your invite…" />
      ) : (
        <>
          <p>This one-time invite makes you a Countersign reviewer.</p>
          <dl className="facts">
            <div>
              <dt>Reviewer</dt>
              <dd>{invite.email}</dd>
            </div>
            <div>
              <dt>Groups</dt>
              <dd>{invite.groups.length ? invite.groups.join(', ') : 'none'}</dd>
            </div>
          </dl>
          <p>
            Your browser will ask you to create a passkey (with your fingerprint, face, PIN or security key).
            You will use it to sign in and to countersign every decision.
          </p>
          <button
            type="button"
            className="button button-primary button-large"
            onClick={() => void enroll()}
            disabled={busy}
          >
            {busy ? 'Waiting for your passkey…' : 'Create passkey'}
          </button>
        </>
      )}
      {error != null && <ErrorNote error={error} title="Registration failed." />}
    </section>
  );
}
