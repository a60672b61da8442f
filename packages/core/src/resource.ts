/**
 * Resource names: `scheme://segment/segment/...`, parsed by a strict grammar so that policy,
 * catalog and credential scope all see one canonical form (THREATS.md F2, F3).
 * Segments are ASCII only: no percent-escapes, no `.`/`..`/empty segments, no backslashes,
 * no control or non-ASCII characters (which also rules out fullwidth dots and homoglyphs, D3).
 */
import { CountersignError } from './errors.js';

export const MAX_RESOURCE_LENGTH = 512;
const SCHEME = /^[a-z][a-z0-9+-]{0,31}$/;
// Letters, digits and a few separators; must start with a letter or digit.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._@+=,:~-]{0,127}$/;
const MAX_SEGMENTS = 32;
// The first segment is a host: lowercase letters, digits, dots and hyphens, optionally a port.
const HOST = /^[a-z0-9][a-z0-9.-]{0,127}(:[1-9][0-9]{0,4})?$/;

export interface ResourceName {
  readonly uri: string;
  readonly scheme: string;
  readonly segments: readonly string[];
}

function invalid(reason: string): never {
  throw new CountersignError('CS_INVALID_RESOURCE', `invalid resource name: ${reason}`);
}

export function parseResource(text: string): ResourceName {
  if (typeof text !== 'string') invalid('not a string');
  if (text.length === 0 || text.length > MAX_RESOURCE_LENGTH)
    invalid(`length must be 1..${MAX_RESOURCE_LENGTH}`);
  const sep = text.indexOf('://');
  if (sep <= 0) invalid('expected scheme://path');
  const scheme = text.slice(0, sep);
  if (!SCHEME.test(scheme)) invalid('scheme must be lowercase letters, digits, + or -');
  const segments = text.slice(sep + 3).split('/');
  if (segments.length > MAX_SEGMENTS) invalid(`at most ${MAX_SEGMENTS} segments`);
  for (const segment of segments) {
    if (segment === '') invalid('empty path segment');
    if (segment === '.' || segment === '..' || /^\.+$/.test(segment)) invalid('dot segments are not allowed');
    if (segment.endsWith('.')) invalid('a segment may not end with a dot');
    if (!SEGMENT.test(segment))
      invalid(`segment ${JSON.stringify(segment)} has characters outside [A-Za-z0-9._@+=,:~-]`);
  }
  if (!HOST.test(segments[0]!)) {
    invalid(
      `the first segment ${JSON.stringify(segments[0])} must be a lowercase host ([a-z0-9.-], optional :port)`,
    );
  }
  // The first segment is what a WHATWG URL parser (a resource server's `new URL()`) reads as
  // the host. It must read exactly as we do: no userinfo (`prod@staging`), no case folding
  // (`DOCS.acme.dev`), no numeric-host rewriting (`0x7f.1` is 127.0.0.1) (THREATS.md F2).
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    invalid('the first segment is not a valid host');
  }
  if (url.username !== '' || url.password !== '' || url.host !== segments[0]) {
    invalid(`the first segment ${JSON.stringify(segments[0])} is not read as the same host by a URL parser`);
  }
  return { uri: text, scheme, segments };
}

/**
 * A catalog pattern: like a resource name, where a segment may be exactly `*`.
 * `*` matches one whole segment; as the last segment it matches one or more remaining
 * segments. Wildcards never match part of a segment, so `db://prod*` is not a pattern and
 * `postgres://prod/*` does not match `postgres://production/x` (F3).
 */
export interface ResourcePattern {
  readonly text: string;
  readonly scheme: string;
  readonly segments: readonly string[];
  /** Number of literal segments: more literal segments means more specific. */
  readonly specificity: number;
}

export function parsePattern(text: string): ResourcePattern {
  const sep = text.indexOf('://');
  if (sep <= 0)
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `catalog pattern ${JSON.stringify(text)}: expected scheme://path`,
    );
  const scheme = text.slice(0, sep);
  const segments = text.slice(sep + 3).split('/');
  const literal = segments.map((s) => (s === '*' ? 'x' : s));
  try {
    parseResource(`${scheme}://${literal.join('/')}`);
  } catch (error) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `catalog pattern ${JSON.stringify(text)}: ${(error as Error).message}`,
    );
  }
  return { text, scheme, segments, specificity: segments.filter((s) => s !== '*').length };
}

export function matchesPattern(pattern: ResourcePattern, name: ResourceName): boolean {
  if (pattern.scheme !== name.scheme) return false;
  const last = pattern.segments.length - 1;
  if (pattern.segments[last] === '*') {
    if (name.segments.length < pattern.segments.length) return false;
  } else if (name.segments.length !== pattern.segments.length) {
    return false;
  }
  for (let i = 0; i <= last; i++) {
    const p = pattern.segments[i];
    if (p !== '*' && p !== name.segments[i]) return false;
  }
  return true;
}
