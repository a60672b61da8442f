/**
 * Hostile-JSON ingress (THREATS.md E4-E7, A5). In order: strict UTF-8 without BOM, a nesting
 * bound checked by an iterative scan before any recursive parser runs, then a full parse with
 * momoa to refuse duplicate keys (two parsers must never disagree on what was signed),
 * unsafe numbers and prototype keys. Only then JSON.parse, which now yields the same value.
 */

import { CountersignError, MAX_JSON_DEPTH } from '@countersign/core';
import { type AnyNode, parse as parseAst, traverse } from '@humanwhocodes/momoa';

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Deepest bracket nesting in JSON text, counting only outside strings. Linear, no recursion. */
export function textNestingDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c)
        i++; // skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x7b || ch === 0x5b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (ch === 0x7d || ch === 0x5d) depth--;
  }
  return max;
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
  if (textNestingDepth(text, maxDepth) > maxDepth) {
    throw new CountersignError('CS_TOO_DEEP', `JSON nested deeper than ${maxDepth} levels`);
  }
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
  try {
    return JSON.parse(text);
  } catch (error) {
    // momoa tolerates some things JSON.parse refuses (raw control characters in strings).
    throw new CountersignError('CS_BAD_JSON', 'body is not valid JSON', { cause: error });
  }
}
