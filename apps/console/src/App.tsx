import { type ReactNode, useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, api, onUnauthorized, type Reviewer } from './api';
import { ErrorNote, Loading } from './components/common';
import { AgentsPage } from './pages/Agents';
import { AuditPage } from './pages/Audit';
import { EnrollPage } from './pages/Enroll';
import { HistoryPage } from './pages/History';
import { LeasesPage } from './pages/Leases';
import { LoadPage } from './pages/Load';
import { LoginPage } from './pages/Login';
import { PoliciesPage } from './pages/Policies';
import { QueuePage } from './pages/Queue';
import { RequestPage } from './pages/Request';
import { href, type Route, replaceRoute, useRoute } from './route';

type Session =
  | { state: 'loading' }
  | { state: 'signed-out' }
  | { state: 'signed-in'; reviewer: Reviewer }
  | { state: 'error'; error: unknown };

const TITLES: Record<Route['name'], string> = {
  queue: 'Queue',
  request: 'Request',
  history: 'History',
  agents: 'Agents',
  leases: 'Leases',
  audit: 'Audit',
  load: 'Reviewer load',
  policies: 'Policies',
  login: 'Sign in',
  enroll: 'Enroll',
  'not-found': 'Not found',
};

export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session>({ state: 'loading' });

  const checkSession = useCallback(async () => {
    setSession({ state: 'loading' });
    try {
      setSession({ state: 'signed-in', reviewer: await api.me() });
    } catch (error) {
      setSession(
        error instanceof ApiError && error.status === 401
          ? { state: 'signed-out' }
          : { state: 'error', error },
      );
    }
  }, []);

  useEffect(() => {
    void checkSession();
    onUnauthorized(() => setSession({ state: 'signed-out' }));
    return () => onUnauthorized(null);
  }, [checkSession]);

  const signedIn = (reviewer: Reviewer) => {
    setSession({ state: 'signed-in', reviewer });
    if (route.name === 'login' || route.name === 'enroll') replaceRoute(href.queue);
  };

  const signOut = async () => {
    try {
      await api.logout();
    } finally {
      setSession({ state: 'signed-out' });
    }
  };

  // Move focus to the page heading on navigation, so keyboard and screen reader users land on it.
  const mainRef = useRef<HTMLElement>(null);
  const lastRoute = useRef<string | null>(null);
  const routeKey = route.name === 'request' ? `request:${route.id}` : route.name;
  const title = TITLES[route.name];
  useEffect(() => {
    document.title = `${title} · Countersign`;
  }, [title]);
  useEffect(() => {
    const first = lastRoute.current === null;
    lastRoute.current = routeKey;
    if (first) return;
    const frame = window.requestAnimationFrame(() => mainRef.current?.querySelector('h1')?.focus());
    return () => window.cancelAnimationFrame(frame);
  }, [routeKey]);

  let content: ReactNode;
  if (route.name === 'enroll') {
    content = <EnrollPage token={route.token} onEnrolled={signedIn} />;
  } else if (session.state === 'loading') {
    content = <Loading label="Checking your session…" />;
  } else if (session.state === 'error') {
    content = (
      <section className="narrow">
        <h1 tabIndex={-1}>Cannot reach Countersign</h1>
        <ErrorNote error={session.error} />
        <button type="button" className="button" onClick={() => void checkSession()}>
          Try again
        </button>
      </section>
    );
  } else if (session.state === 'signed-out' || route.name === 'login') {
    content =
      session.state === 'signed-in' ? (
        <section className="narrow">
          <h1 tabIndex={-1}>You are signed in</h1>
          <p>
            <a href={href.queue}>Go to the queue</a>
          </p>
        </section>
      ) : (
        <LoginPage onSignedIn={signedIn} />
      );
  } else {
    content = <Page route={route} />;
  }

  const reviewer = session.state === 'signed-in' ? session.reviewer : null;
  return (
    <>
      <button type="button" className="skip-link" onClick={skipToMain}>
        Skip to content
      </button>
      <header className="top">
        <div className="top-inner">
          <a className="brand" href={href.queue}>
            <span className="brand-mark" aria-hidden="true">
              ◆
            </span>{' '}
            Countersign <span className="brand-sub">Reviewer console</span>
          </a>
          {reviewer && (
            <>
              <nav aria-label="Main">
                <ul>
                  {(['queue', 'history', 'load', 'policies', 'agents', 'leases', 'audit'] as const).map(
                    (name) => (
                      <li key={name}>
                        <a
                          href={href[name]}
                          aria-current={
                            route.name === name || (name === 'queue' && route.name === 'request')
                              ? 'page'
                              : undefined
                          }
                        >
                          {TITLES[name]}
                        </a>
                      </li>
                    ),
                  )}
                </ul>
              </nav>
              <div className="who">
                <span className="who-email" title={`Groups: ${reviewer.groups.join(', ') || 'none'}`}>
                  {reviewer.email}
                </span>
                <button type="button" className="button button-quiet" onClick={() => void signOut()}>
                  Sign out
                </button>
              </div>
            </>
          )}
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        {content}
      </main>
    </>
  );
}

/** Hash routing owns the fragment, so the skip control focuses the main region directly. */
function skipToMain() {
  document.getElementById('main')?.focus();
}

function Page({ route }: { route: Route }) {
  switch (route.name) {
    case 'queue':
      return <QueuePage />;
    case 'request':
      return <RequestPage key={route.id} id={route.id} />;
    case 'history':
      return <HistoryPage />;
    case 'agents':
      return <AgentsPage />;
    case 'leases':
      return <LeasesPage />;
    case 'audit':
      return <AuditPage />;
    case 'load':
      return <LoadPage />;
    case 'policies':
      return <PoliciesPage />;
    default:
      return (
        <section className="narrow">
          <h1 tabIndex={-1}>Page not found</h1>
          <p>
            There is no page at this address. <a href={href.queue}>Go to the queue</a>.
          </p>
        </section>
      );
  }
}
