import { useEffect, useState } from 'react';

export type Route =
  | { name: 'queue' }
  | { name: 'request'; id: string }
  | { name: 'history' }
  | { name: 'agents' }
  | { name: 'leases' }
  | { name: 'audit' }
  | { name: 'load' }
  | { name: 'policies' }
  | { name: 'login' }
  | { name: 'enroll'; token: string }
  | { name: 'not-found'; path: string };

function decode(part: string): string | null {
  try {
    const value = decodeURIComponent(part);
    return value.length > 0 ? value : null;
  } catch {
    return null;
  }
}

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/\?.*$/, '');
  if (path === '' || path === '/' || path === '/queue') return { name: 'queue' };
  if (path === '/history') return { name: 'history' };
  if (path === '/agents') return { name: 'agents' };
  if (path === '/leases') return { name: 'leases' };
  if (path === '/audit') return { name: 'audit' };
  if (path === '/load') return { name: 'load' };
  if (path === '/policies') return { name: 'policies' };
  if (path === '/login') return { name: 'login' };
  const request = /^\/requests\/([^/]+)$/.exec(path);
  if (request) {
    const id = decode(request[1]!);
    if (id) return { name: 'request', id };
  }
  const enroll = /^\/enroll\/([^/]+)$/.exec(path);
  if (enroll) {
    const token = decode(enroll[1]!);
    if (token) return { name: 'enroll', token };
  }
  return { name: 'not-found', path };
}

export const href = {
  queue: '#/queue',
  history: '#/history',
  agents: '#/agents',
  leases: '#/leases',
  audit: '#/audit',
  load: '#/load',
  policies: '#/policies',
  login: '#/login',
  request: (id: string) => `#/requests/${encodeURIComponent(id)}`,
};

/** Replaces the current history entry (used to drop an enrollment token from history). */
export function replaceRoute(hash: string): void {
  window.location.replace(hash);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
