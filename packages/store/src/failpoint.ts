/**
 * Named failpoints for the crash-safety harness (THREATS.md R3, H1): with
 * `COUNTERSIGN_FAILPOINT=<name>` (or `<name>:<n>`, the n-th time it is reached) in the
 * environment, the process kills itself with SIGKILL when it reaches that point, exactly as a
 * power cut or `kill -9` would stop it: no handler runs, nothing is flushed.
 *
 * Unset (every real deployment), `failpoint` is a function that does nothing, chosen once when
 * the module loads: a call costs one empty call and reads no environment.
 * Worker threads (the SQLite writer) see the same environment and count their own hits.
 */

/** Every failpoint on the issuance path, in the order a request reaches them. */
export const FAILPOINTS = [
  /** access_token issuer: the credential is signed, its unit not yet run. */
  'issuer.after-sign',
  /** Inside the decision's unit: the assertion's jti is consumed (uncommitted). */
  'unit.after-assertion',
  /** Inside the unit: an audit event about a request is written (uncommitted). */
  'unit.after-audit-append',
  /** Inside the unit: the lease row is written (uncommitted). */
  'unit.after-lease-insert',
  /** A group commit holding a decision ran its units; COMMIT not yet sent (inline and writer-thread modes). */
  'store.before-commit',
  /** COMMIT returned (durable), the units' callers not yet answered. */
  'store.after-commit',
  /** The decision use case returned; the HTTP response not yet built. */
  'response.before-send',
] as const;

export type FailpointName = (typeof FAILPOINTS)[number];

function parse(value: string | undefined): { name: string; at: number } | null {
  if (!value) return null;
  const m = /^([a-z.-]+)(?::([1-9][0-9]*))?$/.exec(value);
  if (!m || !(FAILPOINTS as readonly string[]).includes(m[1]!)) {
    throw new Error(`COUNTERSIGN_FAILPOINT: unknown failpoint ${JSON.stringify(value)}`);
  }
  return { name: m[1]!, at: m[2] ? Number(m[2]) : 1 };
}

const noop = (_name: FailpointName): void => {};

function armed(target: { name: string; at: number }): (name: FailpointName) => void {
  let hits = 0;
  return (name) => {
    if (name !== target.name) return;
    hits += 1;
    if (hits === target.at) process.kill(process.pid, 'SIGKILL');
  };
}

const target = parse(process.env.COUNTERSIGN_FAILPOINT);

/** Kills the process here when this failpoint is armed; otherwise does nothing. */
export const failpoint: (name: FailpointName) => void = target ? armed(target) : noop;
