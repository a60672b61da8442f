/**
 * The request digest: what a reviewer approves. SHA-256 over a domain-separation tag and the
 * RFC 8785 (JCS) canonical JSON of every field that defines the decision (THREATS.md INV-4).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import canonicalize from 'canonicalize';
import { CountersignError } from './errors.js';

/** Domain separation: a request digest can never be confused with another hash we make. */
export const REQUEST_DIGEST_TAG = 'countersign/req/v1\0';
/** Deepest nesting accepted anywhere we canonicalize; checked before recursion (THREATS.md E5). */
export const MAX_JSON_DEPTH = 64;

/** Depth of a parsed JSON value, iteratively, so hostile depth cannot overflow the stack. */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** RFC 8785 canonical JSON, refusing what JCS cannot represent and anything too deep. */
export function canonicalJson(value: unknown): string {
  if (jsonDepth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new CountersignError('CS_TOO_DEEP', `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new CountersignError(
      'CS_INVALID_REQUEST',
      `value cannot be canonicalized: ${(error as Error).message}`,
    );
  }
  if (text === undefined) throw new CountersignError('CS_INVALID_REQUEST', 'value cannot be canonicalized');
  return text;
}

/** Hex SHA-256 of the UTF-8 bytes of a string. */
export type Sha256Hex = (text: string) => string;

/** The portable implementation (pure JS, runs anywhere core runs). */
export const portableSha256Hex: Sha256Hex = (text) => bytesToHex(sha256(utf8ToBytes(text)));

let sha256Impl: Sha256Hex = portableSha256Hex;

// Known answers an installed implementation must reproduce, including a lone surrogate
// (both encoders must turn it into U+FFFD) and multi-byte characters.
const SHA256_CHECKS = ['', 'abc', 'countersign/req/v1\0{"a":"é😀"}', 'x\uD800y', 'a'.repeat(1000)];

/**
 * Installs a faster implementation of the same function (the server installs node:crypto's,
 * about seven times faster than the portable one on a request digest). It must agree with
 * the portable implementation on known answers, or it is refused: a digest never changes
 * with the implementation that computed it.
 */
export function useSha256(implementation: Sha256Hex): void {
  for (const text of SHA256_CHECKS) {
    if (implementation(text) !== portableSha256Hex(text)) {
      throw new TypeError('this SHA-256 implementation disagrees with the portable one');
    }
  }
  sha256Impl = implementation;
}

export function sha256Hex(text: string): string {
  return sha256Impl(text);
}

/** Hex SHA-256 of tag || JCS(value). */
export function taggedDigest(tag: string, value: unknown): string {
  return sha256Hex(tag + canonicalJson(value));
}

export function requestDigest(decisionFields: unknown): string {
  return requestDigestOfCanonical(canonicalJson(decisionFields));
}

/** The request digest of decision fields already in canonical form (saves canonicalizing twice). */
export function requestDigestOfCanonical(canonical: string): string {
  return `sha256:${sha256Hex(REQUEST_DIGEST_TAG + canonical)}`;
}

/** Domain separation for the digest of one MCP tool call. */
export const TOOL_CALL_TAG = 'countersign/mcp-call/v1\0';

/**
 * The canonical JSON of a tool call's arguments, and the call digest: SHA-256 over the
 * upstream server, the tool and the arguments. What an approval of an MCP tool call binds
 * to (the MCP gateway sends both; THREATS.md A3).
 */
export function toolCallDigest(
  server: string,
  tool: string,
  args: unknown,
): { canonical: string; digest: string } {
  const canonical = canonicalJson(args ?? {});
  const whole = canonicalJson({ server, tool, arguments: args ?? {} });
  return { canonical, digest: `sha256:${sha256Hex(TOOL_CALL_TAG + whole)}` };
}

/**
 * Checks that a tool call's `arguments` text is canonical JSON and that `call_digest` is the
 * digest of this server, tool and arguments, so what the reviewer reads is what the digest names.
 */
export function checkToolCall(toolCall: {
  server: string;
  tool: string;
  arguments: string;
  call_digest: string;
}): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(toolCall.arguments);
  } catch {
    throw new CountersignError('CS_INVALID_REQUEST', 'tool_call.arguments is not JSON');
  }
  const { canonical, digest } = toolCallDigest(toolCall.server, toolCall.tool, parsed);
  if (canonical !== toolCall.arguments) {
    throw new CountersignError('CS_INVALID_REQUEST', 'tool_call.arguments is not RFC 8785 canonical JSON');
  }
  if (digest !== toolCall.call_digest) {
    throw new CountersignError(
      'CS_ARGUMENTS_DIGEST_MISMATCH',
      'tool_call.call_digest is not the digest of tool_call.server, tool and arguments',
    );
  }
}
