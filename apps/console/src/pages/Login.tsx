import { browserSupportsWebAuthn } from '@simplewebauthn/browser';
import { useState } from 'react';
import { type Reviewer, signInWithPasskey } from '../api';
import { ErrorNote } from '../components/common';

export function LoginPage({ onSignedIn }: { onSignedIn: (reviewer: Reviewer) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const supported = browserSupportsWebAuthn();

  const signIn = async () => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signInWithPasskey());
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="narrow card login">
      <h1 tabIndex={-1}>Sign in</h1>
      <p>
        Reviewers sign in with the passkey they registered from their invite link. Every approve or deny asks
        for your passkey again.
      </p>
      {!supported && (
        <div className="note note-error" role="alert">
          This browser does not support passkeys (WebAuthn). Use a current browser over https or localhost.
        </div>
      )}
      <button
        type="button"
        className="button button-primary button-large"
        onClick={() => void signIn()}
        disabled={busy || !supported}
      >
        {busy ? 'Waiting for your passkey…' : 'Sign in with a passkey'}
      </button>
      {error != null && <ErrorNote error={error} title="Sign-in failed." />}
      <p className="muted small">
        No passkey yet? Ask an administrator for an invite: <code>countersign reviewer invite</code>.
      </p>
    </section>
  );
}
