/**
 * The JSON front door's fast path (JSON.parse, then checks against the text) must accept and
 * refuse exactly what a full momoa pass over every body did (THREATS.md E5-E7, A5): the same
 * verdict and the same code, for generated JSON with duplicate keys, prototype keys, unsafe
 * numbers, escapes and syntax damage spliced in. SECURITY_SEED reproduces a run.
 */

import { CountersignError } from '@countersign/core';
import { parseJsonBody } from '@countersign/server';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { refuseWithMomoa } from '../../packages/server/src/json-body.js';
import { suiteSeed } from './attack-kit.js';

const SEED = suiteSeed();

/** What momoa-first ingress answered: null (accepted) or the code it refused with. */
function reference(text: string): string | null {
  try {
    refuseWithMomoa(text);
  } catch (error) {
    if (error instanceof CountersignError) return error.code;
    throw error;
  }
  try {
    JSON.parse(text);
  } catch {
    return 'CS_BAD_JSON';
  }
  return null;
}

function actual(text: string): string | null {
  try {
    parseJsonBody(new TextEncoder().encode(text));
    return null;
  } catch (error) {
    if (error instanceof CountersignError) return error.code;
    throw error;
  }
}

const KEYS = ['a', 'b', 'a', '__proto__', 'constructor', 'x\\"y', 'k\\u0061', 'é', ''];
const NUMBERS = ['9007199254740993', '-9007199254740992', '1e400', '-0', '0.5', '12', '1E2'];

/** JSON text with hostile pieces spliced in at random object and array positions. */
const hostileText = fc
  .tuple(
    fc.jsonValue({ maxDepth: 4 }),
    fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(...NUMBERS, '"v"', '{}', '[1,2]', 'null')),
        fc.tuple(fc.constant(''), fc.constantFrom(...NUMBERS)),
      ),
      { maxLength: 4 },
    ),
    fc.nat(),
  )
  .map(([value, pieces, at]) => {
    let text = JSON.stringify({ base: value });
    for (const [i, [key, v]] of pieces.entries()) {
      const braces = [...text.matchAll(/\{/g)].map((m) => m.index!);
      const brackets = [...text.matchAll(/\[/g)].map((m) => m.index!);
      if (key === '' && brackets.length > 0) {
        const pos = brackets[(at + i) % brackets.length]! + 1;
        const empty = text[pos] === ']';
        text = `${text.slice(0, pos)}${v}${empty ? '' : ','}${text.slice(pos)}`;
      } else {
        const pos = braces[(at + i) % braces.length]! + 1;
        const empty = text[pos] === '}';
        text = `${text.slice(0, pos)}"${key}":${v}${empty ? '' : ','}${text.slice(pos)}`;
      }
    }
    return text;
  });

describe('JSON ingress fast path equals the momoa reference', () => {
  const verdicts = new Map<string, number>();
  const damagedVerdicts = new Map<string, number>();
  it('E5 E6 E7 A5 property (3,000 runs): generated hostile JSON gets the same verdict and code', () => {
    fc.assert(
      fc.property(hostileText, (text) => {
        const verdict = reference(text);
        verdicts.set(String(verdict), (verdicts.get(String(verdict)) ?? 0) + 1);
        expect(actual(text), text).toBe(verdict);
      }),
      { seed: SEED, numRuns: 3000 },
    );
    // The generator must reach every verdict, or the property proves little.
    for (const v of ['null', 'CS_DUPLICATE_KEY', 'CS_FORBIDDEN_KEY', 'CS_UNSAFE_NUMBER'])
      expect(verdicts.get(v) ?? 0, `${v} in ${JSON.stringify([...verdicts])}`).toBeGreaterThan(100);
  });

  it('E6 property (2,000 runs): damaged JSON text (a character cut, doubled or swapped) gets the same verdict and code', () => {
    fc.assert(
      fc.property(
        hostileText,
        fc.nat(),
        fc.constantFrom('cut', 'double', 'colon', 'quote'),
        (text, n, edit) => {
          const i = n % text.length;
          const damaged =
            edit === 'cut'
              ? text.slice(0, i) + text.slice(i + 1)
              : edit === 'double'
                ? text.slice(0, i) + text[i] + text.slice(i)
                : edit === 'colon'
                  ? `${text.slice(0, i)}:${text.slice(i)}`
                  : `${text.slice(0, i)}"${text.slice(i)}`;
          const verdict = reference(damaged);
          damagedVerdicts.set(String(verdict), (damagedVerdicts.get(String(verdict)) ?? 0) + 1);
          expect(actual(damaged), damaged).toBe(verdict);
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
    expect(damagedVerdicts.get('CS_BAD_JSON') ?? 0).toBeGreaterThan(100);
    expect(damagedVerdicts.get('null') ?? 0).toBeGreaterThan(50);
  });

  it('E5 a duplicate key hidden inside a value that a later duplicate overwrites is still refused', () => {
    expect(actual('{"a":{"x":1,"x":2},"a":3}')).toBe('CS_DUPLICATE_KEY');
    expect(actual('{"a":{"x":1},"a":{"y":2}}')).toBe('CS_DUPLICATE_KEY');
    expect(actual('{"a:b":1,"c":"d:e"}')).toBe(null);
  });
});
