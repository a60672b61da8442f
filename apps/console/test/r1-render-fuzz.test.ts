// THREATS.md R1 and R7 (D1, D2, D3, D4, D6; DESIGN.md invariant 6): fast-check over the text an
// agent controls, rendered by the console's own <Untrusted> component (server-side rendered
// with react-dom, the same React tree the browser mounts). For every input: no exception, the
// markup holds only the component's own elements and attributes (no element or attribute
// from the input), no bidi, invisible or control character reaches the output raw, and a
// truncated text says how much is hidden. CI: 2,000 inputs; EXTENDED=1: 15,000 (the agent
// API's fuzz in test/proofs/r1-fuzz.test.ts makes up the rest of R1's 100,000).
import fc from 'fast-check';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { UNTRUSTED_LIMIT, Untrusted } from '../src/components/Untrusted';
import { isHiddenCharacter } from '../src/untrusted';

const EXTENDED = process.env.EXTENDED === '1';
const RUNS = EXTENDED ? 15_000 : 2_000;
const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : Date.now() % 2_147_483_647;

const ALLOWED_TAGS = new Set(['div', 'span', 'button']);
const ALLOWED_ATTRIBUTES = new Set(['class', 'title', 'id', 'type', 'aria-expanded', 'aria-controls']);

const payloads = fc.constantFrom(
  '<script>window.__pwned=1</script>',
  '<img src=x onerror=alert(1)>',
  '"><svg onload=alert(1)>',
  "javascript:alert('x')",
  '</span><b onclick=x>',
  '{{constructor.constructor("alert(1)")()}}',
  '\u202eexe.txt',
  '\u2066\u2069',
  'prod-d\u0430tabase',
  'a\u200bb\u200dc',
  '\r\n2026-11-24 APPROVED by admin',
  '\u001b[31mred\u001b[0m',
  '\udbff',
  '\u{e0041}\u{e0042}',
  '&lt;script&gt;',
  '&#x3C;script&#x3E;',
);
const untrusted = fc.oneof(
  fc.string({ maxLength: 200, unit: 'binary' }),
  fc.string({ maxLength: 50, unit: 'grapheme' }),
  fc
    .array(fc.oneof(payloads, fc.string({ maxLength: 8, unit: 'binary' })), { maxLength: 8 })
    .map((a) => a.join('')),
  fc
    .tuple(fc.integer({ min: UNTRUSTED_LIMIT - 20, max: UNTRUSTED_LIMIT + 200 }), payloads)
    .map(([n, p]) => `${'a'.repeat(n)}${p}`),
);

/** Decodes the few entities React writes in text and attribute values. */
function textOf(html: string): string {
  return html
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#x27;/g, "'")
    .replace(/&amp;/g, '&');
}

describe('R1 fuzzing the console rendering of untrusted text', () => {
  it(`R1 R7 D1 D2 D3 D4 ${RUNS} generated texts through <Untrusted>: no crash, no foreign markup, no raw hidden characters`, () => {
    let inputs = 0;
    let withHidden = 0;
    let truncated = 0;
    const crashes: unknown[] = [];
    fc.assert(
      fc.property(untrusted, fc.boolean(), (text, identifier) => {
        inputs++;
        let html: string;
        try {
          html = renderToStaticMarkup(createElement(Untrusted, { text, identifier }));
        } catch (error) {
          crashes.push(error);
          throw error;
        }
        // Only the component's own elements and attributes.
        const foreign: string[] = [];
        for (const m of html.matchAll(/<\/?([a-zA-Z][^\s/>]*)([^>]*)>/g)) {
          if (!ALLOWED_TAGS.has(m[1]!.toLowerCase())) foreign.push(m[0]);
          for (const a of m[2]!.matchAll(/([^\s=]+)="[^"]*"/g)) {
            if (!ALLOWED_ATTRIBUTES.has(a[1]!.toLowerCase())) foreign.push(a[0]);
          }
        }
        expect(foreign).toEqual([]);
        const shown = textOf(html);
        const cps = Array.from(shown).map((c) => c.codePointAt(0)!);
        // Newline and tab may stay in prose; everything else hidden shows as a token.
        for (const cp of cps)
          expect(isHiddenCharacter(cp, true) && cp !== 0x0a && cp !== 0x09, cp.toString(16)).toBe(false);
        if (identifier) expect(cps.includes(0x0a) || cps.includes(0x09)).toBe(false);
        const hidden = Array.from(text).filter((c) =>
          isHiddenCharacter(c.codePointAt(0)!, identifier),
        ).length;
        if (hidden > 0) {
          withHidden++;
          expect(html).toContain(`hidden characters (${hidden})`);
        }
        if (Array.from(text).length > UNTRUSTED_LIMIT) {
          truncated++;
          expect(shown).toMatch(/more characters not shown/);
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
    console.log(
      JSON.stringify({
        goal: 'R1',
        part: 'console rendering',
        seed: SEED,
        inputs,
        crashes: crashes.length,
        with_hidden_characters: withHidden,
        truncated,
      }),
    );
    expect(crashes).toEqual([]);
    expect(withHidden).toBeGreaterThan(0);
    expect(truncated).toBeGreaterThan(0);
  }, 300_000);
});
