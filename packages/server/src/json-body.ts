/**
 * Hostile-JSON ingress (THREATS.md E4-E7, A5). In order: strict UTF-8 without BOM, a nesting
 * bound checked by an iterative scan before any recursive parser runs, then JSON.parse, then
 * checks of what it built against the text: no prototype keys, no unsafe numbers, and as many
 * object members as the text has name separators (a duplicate key is the only way JSON.parse
 * keeps fewer: two parsers must never disagree on what was signed). Anything that fails a
 * check is parsed again with momoa, which names the first offence in document order, so the
 * error is the same as when momoa checked every body; a body that passes never meets momoa.
 * JSON.parse and the checks cost ~2 µs where momoa's parse cost ~30 µs of each decision.
 */

import { CountersignError, MAX_JSON_DEPTH } from '@countersign/core';
import { type AnyNode, parse as parseAst, traverse } from '@humanwhocodes/momoa';

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Deepest bracket nesting in JSON text, counting only outside strings. Linear, no recursion. */
export function textNestingDepth(text: string, limit: number): number {
  return scanJsonText(text, limit).depth;
}

/**
 * One linear pass over JSON text, outside strings only: the deepest bracket nesting (stops
 * early once past `limit`) and the number of name separators (`:`), which in valid JSON is
 * exactly the number of object members in the text.
 */
function scanJsonText(text: string, limit: number): { depth: number; members: number } {
  let depth = 0;
  let max = 0;
  let members = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c)
        i++; // skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x3a) members++;
    else if (ch === 0x7b || ch === 0x5b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return { depth: max, members };
      }
    } else if (ch === 0x7d || ch === 0x5d) depth--;
  }
  return { depth: max, members };
}

/**
 * Whether a parsed value has no prototype keys, no unsafe numbers, and exactly `members`
 * object members. Iterative: the depth is bounded already, but no recursion is needed.
 */
function passesChecks(value: unknown, members: number): boolean {
  let seen = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v))) return false;
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push(item);
    } else if (v !== null && typeof v === 'object') {
      for (const key of Object.keys(v)) {
        if (FORBIDDEN_KEYS.has(key)) return false;
        seen++;
        stack.push((v as Record<string, unknown>)[key]);
      }
    }
  }
  return seen === members;
}

/** The full check with momoa: throws the first offence in document order with its code. */
export function refuseWithMomoa(text: string): void {
  let ast: ReturnType<typeof parseAst>;
  try {
    ast = parseAst(text, { mode: 'json', ranges: false, tokens: false });
  } catch (error) {
    throw new CountersignError('CS_BAD_JSON', 'body is not valid JSON', { cause: error });
  }
  traverse(ast, {
    enter(visited) {
      const node = visited as AnyNode;
      if (node.type === 'Object') {
        const seen = new Set<string>();
        for (const member of node.members) {
          const key = member.name.type === 'String' ? member.name.value : member.name.name;
          if (FORBIDDEN_KEYS.has(key))
            throw new CountersignError('CS_FORBIDDEN_KEY', `key ${JSON.stringify(key)} is not allowed`);
          if (seen.has(key))
            throw new CountersignError('CS_DUPLICATE_KEY', `duplicate key ${JSON.stringify(key)}`);
          seen.add(key);
        }
      } else if (node.type === 'Number') {
        const v = node.value;
        if (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v))) {
          throw new CountersignError('CS_UNSAFE_NUMBER', 'numbers must be within ±(2^53−1)');
        }
      }
    },
  });
}

export function parseJsonBody(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): unknown {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new CountersignError('CS_BAD_JSON', 'a byte order mark is not allowed');
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (error) {
    throw new CountersignError('CS_BAD_JSON', 'body is not valid UTF-8', { cause: error });
  }
  const { depth, members } = scanJsonText(text, maxDepth);
  if (depth > maxDepth) {
    throw new CountersignError('CS_TOO_DEEP', `JSON nested deeper than ${maxDepth} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // Named as momoa would have named it where it can (a duplicate key before a syntax error).
    refuseWithMomoa(text);
    throw new CountersignError('CS_BAD_JSON', 'body is not valid JSON', { cause: error });
  }
  if (!passesChecks(value, members)) {
    refuseWithMomoa(text);
    // momoa found nothing: refuse anyway (fail closed), as the checks did.
    throw new CountersignError('CS_BAD_JSON', 'body is not valid JSON');
  }
  return value;
}
