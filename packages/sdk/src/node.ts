/**
 * Node-only helpers (kept out of the main entry, which uses Web APIs only).
 */
import { readFile } from 'node:fs/promises';
import { callbackSource, type TokenSource } from './token-source.js';

/**
 * A token read from a file on every call, so a rotated token is picked up at once: the
 * Kubernetes projected service-account token (kubelet rewrites it well before expiry), a
 * SPIFFE helper's JWT-SVID file, a CI system's token file.
 */
export function tokenFileSource(path: string): TokenSource {
  return callbackSource(async () => readFile(path, 'utf8'));
}

/** Where kubelet mounts a projected token by default (set your volume's path if different). */
export const KUBERNETES_TOKEN_PATH = '/var/run/secrets/tokens/countersign-token';
