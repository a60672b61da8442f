// The console's untrusted-text analysis (DESIGN.md invariant 6; THREATS.md D2, D3, D4, D6).
import { describe, expect, it } from 'vitest';
import { analyzeText, type Segment } from '../src/untrusted';

const shown = (segments: Segment[]) => segments.map((s) => (s.kind === 'hidden' ? s.token : s.text)).join('');

describe('analyzeText', () => {
  it('replaces bidi controls and zero-width characters with visible tokens (D2)', () => {
    const a = analyzeText('approve \u202Eexe.txt a\u200Bb', 600);
    expect(shown(a.segments)).toBe('approve ⟨U+202E⟩exe.txt a⟨U+200B⟩b');
    expect(a.hiddenCount).toBe(2);
    expect(a.hiddenNames).toContain('RIGHT-TO-LEFT OVERRIDE (U+202E)');
  });

  it('covers every listed bidi, invisible and control character', () => {
    const cps = [
      ...[0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f, 0x061c],
      ...[0x200b, 0x200c, 0x200d, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff, 0x00ad, 0x180e],
      ...[0x00, 0x07, 0x0d, 0x1b, 0x7f, 0x85, 0x9b, 0xe0041],
    ];
    for (const cp of cps) {
      const a = analyzeText(`x${String.fromCodePoint(cp)}y`, 600);
      expect(a.hiddenCount, cp.toString(16)).toBe(1);
      expect(shown(a.segments)).toMatch(/^x⟨U\+[0-9A-F]{4,}⟩y$/);
      expect(shown(a.segments)).not.toContain(String.fromCodePoint(cp));
    }
  });

  it('keeps newline and tab in prose but shows them in identifiers; CR is always shown (D6)', () => {
    expect(shown(analyzeText('a\n\tb', 600).segments)).toBe('a\n\tb');
    expect(shown(analyzeText('a\n\tb', 600, true).segments)).toBe('a⟨U+000A⟩⟨U+0009⟩b');
    expect(shown(analyzeText('FIN-1\r\nAPPROVED', 600).segments)).toBe('FIN-1⟨U+000D⟩\nAPPROVED');
  });

  it('keeps markup as plain text', () => {
    const text = '<script>window.__pwned=1</script><img src=x onerror=alert(1)>';
    expect(shown(analyzeText(text, 600).segments)).toBe(text);
  });

  it('flags Latin mixed with Cyrillic or Greek in one word and marks the look-alike (D3)', () => {
    const a = analyzeText('prod-d\u0430tabase', 600, true);
    expect(a.mixedScripts).toBe(true);
    expect(a.segments.filter((s) => s.kind === 'confusable')).toHaveLength(1);
    expect(analyzeText('Привет, hello', 600).mixedScripts).toBe(false);
    expect(analyzeText('Привет, hello', 600, true).mixedScripts).toBe(true);
    expect(analyzeText('plain ascii', 600).mixedScripts).toBe(false);
  });

  it('cuts long text at the limit but reports its full length and what hides past the cut (D4)', () => {
    const text = `${'a'.repeat(700)}\u202E`;
    const a = analyzeText(text, 600);
    expect(a.length).toBe(701);
    expect(a.truncated).toBe(true);
    expect(shown(a.segments)).toHaveLength(600);
    expect(a.hiddenCount).toBe(1);
    const all = analyzeText(text, Number.POSITIVE_INFINITY);
    expect(all.truncated).toBe(false);
    expect(shown(all.segments).endsWith('⟨U+202E⟩')).toBe(true);
  });

  it('counts characters as code points and shows lone surrogates', () => {
    expect(analyzeText('😀😀', 600).length).toBe(2);
    expect(shown(analyzeText('a\uD800b', 600).segments)).toBe('a⟨U+D800⟩b');
  });
});
