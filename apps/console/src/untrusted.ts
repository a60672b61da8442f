/**
 * Analysis of agent-supplied text before it is shown (DESIGN.md invariant 6, THREATS.md D2-D4).
 * Pure functions: the component in components/Untrusted.tsx renders the result as React text.
 */

export type Segment =
  | { kind: 'text'; text: string }
  /** A bidirectional, invisible or control character, shown as `⟨U+XXXX⟩`. */
  | { kind: 'hidden'; token: string; name: string }
  /** A Cyrillic or Greek letter inside a word that also has Latin letters (a likely look-alike). */
  | { kind: 'confusable'; text: string; name: string };

export interface Analysis {
  /** Length of the whole text in characters (Unicode code points). */
  length: number;
  /** The first `limit` characters, as segments. */
  segments: Segment[];
  truncated: boolean;
  /** Counted over the whole text, shown or not. */
  hiddenCount: number;
  hiddenNames: string[];
  mixedScripts: boolean;
}

const NAMES = new Map<number, string>([
  [0x00, 'NULL'],
  [0x07, 'BELL'],
  [0x08, 'BACKSPACE'],
  [0x09, 'CHARACTER TABULATION'],
  [0x0a, 'LINE FEED'],
  [0x0b, 'LINE TABULATION'],
  [0x0c, 'FORM FEED'],
  [0x0d, 'CARRIAGE RETURN'],
  [0x1b, 'ESCAPE'],
  [0x7f, 'DELETE'],
  [0x85, 'NEXT LINE'],
  [0x9b, 'CONTROL SEQUENCE INTRODUCER'],
  [0xad, 'SOFT HYPHEN'],
  [0x034f, 'COMBINING GRAPHEME JOINER'],
  [0x061c, 'ARABIC LETTER MARK'],
  [0x115f, 'HANGUL CHOSEONG FILLER'],
  [0x1160, 'HANGUL JUNGSEONG FILLER'],
  [0x17b4, 'KHMER VOWEL INHERENT AQ'],
  [0x17b5, 'KHMER VOWEL INHERENT AA'],
  [0x180e, 'MONGOLIAN VOWEL SEPARATOR'],
  [0x200b, 'ZERO WIDTH SPACE'],
  [0x200c, 'ZERO WIDTH NON-JOINER'],
  [0x200d, 'ZERO WIDTH JOINER'],
  [0x200e, 'LEFT-TO-RIGHT MARK'],
  [0x200f, 'RIGHT-TO-LEFT MARK'],
  [0x2028, 'LINE SEPARATOR'],
  [0x2029, 'PARAGRAPH SEPARATOR'],
  [0x202a, 'LEFT-TO-RIGHT EMBEDDING'],
  [0x202b, 'RIGHT-TO-LEFT EMBEDDING'],
  [0x202c, 'POP DIRECTIONAL FORMATTING'],
  [0x202d, 'LEFT-TO-RIGHT OVERRIDE'],
  [0x202e, 'RIGHT-TO-LEFT OVERRIDE'],
  [0x2060, 'WORD JOINER'],
  [0x2061, 'FUNCTION APPLICATION'],
  [0x2062, 'INVISIBLE TIMES'],
  [0x2063, 'INVISIBLE SEPARATOR'],
  [0x2064, 'INVISIBLE PLUS'],
  [0x2066, 'LEFT-TO-RIGHT ISOLATE'],
  [0x2067, 'RIGHT-TO-LEFT ISOLATE'],
  [0x2068, 'FIRST STRONG ISOLATE'],
  [0x2069, 'POP DIRECTIONAL ISOLATE'],
  [0x3164, 'HANGUL FILLER'],
  [0xfeff, 'ZERO WIDTH NO-BREAK SPACE (BYTE ORDER MARK)'],
  [0xffa0, 'HALFWIDTH HANGUL FILLER'],
  [0xfff9, 'INTERLINEAR ANNOTATION ANCHOR'],
  [0xfffa, 'INTERLINEAR ANNOTATION SEPARATOR'],
  [0xfffb, 'INTERLINEAR ANNOTATION TERMINATOR'],
]);

const isBidi = (cp: number) =>
  (cp >= 0x202a && cp <= 0x202e) ||
  (cp >= 0x2066 && cp <= 0x2069) ||
  cp === 0x200e ||
  cp === 0x200f ||
  cp === 0x061c;

const isInvisible = (cp: number) =>
  (cp >= 0x200b && cp <= 0x200d) ||
  (cp >= 0x2060 && cp <= 0x206f) ||
  cp === 0xfeff ||
  cp === 0x00ad ||
  cp === 0x180e ||
  cp === 0x034f ||
  cp === 0x115f ||
  cp === 0x1160 ||
  cp === 0x17b4 ||
  cp === 0x17b5 ||
  cp === 0x3164 ||
  cp === 0xffa0 ||
  cp === 0x2028 ||
  cp === 0x2029 ||
  (cp >= 0xfff9 && cp <= 0xfffb) ||
  (cp >= 0xe0000 && cp <= 0xe007f); // tag characters: invisible ASCII ("ASCII smuggling")

const isControl = (cp: number) => cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
const isLoneSurrogate = (cp: number) => cp >= 0xd800 && cp <= 0xdfff;

/** True when the character must be shown as a visible token. In identifiers, newline and tab are too. */
export function isHiddenCharacter(cp: number, identifier = false): boolean {
  if (cp === 0x0a || cp === 0x09) return identifier;
  return isBidi(cp) || isInvisible(cp) || isControl(cp) || isLoneSurrogate(cp);
}

export function codePointLabel(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function characterName(cp: number): string {
  const known = NAMES.get(cp);
  if (known) return known;
  if (cp >= 0xe0000 && cp <= 0xe007f) {
    const ascii = cp - 0xe0000;
    return ascii >= 0x20 && ascii < 0x7f
      ? `TAG CHARACTER (invisible "${String.fromCharCode(ascii)}")`
      : 'TAG CHARACTER';
  }
  if (cp <= 0x1f || cp === 0x7f) return 'CONTROL CHARACTER';
  if (cp >= 0x80 && cp <= 0x9f) return 'C1 CONTROL CHARACTER';
  if (isLoneSurrogate(cp)) return 'LONE SURROGATE (invalid text)';
  return 'INVISIBLE FORMAT CHARACTER';
}

const LATIN = /\p{Script=Latin}/u;
const CYRILLIC = /\p{Script=Cyrillic}/u;
const GREEK = /\p{Script=Greek}/u;
const SPACE = /\s/u;

/**
 * Splits `text` into displayable segments. `identifier` treats the whole string as one word for
 * the mixed-script check and makes newline and tab visible too.
 */
export function analyzeText(text: string, limit: number, identifier = false): Analysis {
  const chars = Array.from(text); // code points; a lone surrogate stays one element
  const cps = chars.map((c) => c.codePointAt(0) ?? 0);
  const hidden = cps.map((cp) => isHiddenCharacter(cp, identifier));

  // Mixed scripts, word by word (or the whole identifier): mark Cyrillic/Greek letters in words with Latin.
  const confusable: (string | null)[] = chars.map(() => null);
  let mixedScripts = false;
  const markWord = (start: number, end: number) => {
    let latin = false;
    let other = false;
    for (let i = start; i < end; i++) {
      const c = chars[i]!;
      if (LATIN.test(c)) latin = true;
      else if (CYRILLIC.test(c) || GREEK.test(c)) other = true;
    }
    if (!latin || !other) return;
    mixedScripts = true;
    for (let i = start; i < end; i++) {
      const c = chars[i]!;
      if (CYRILLIC.test(c)) confusable[i] = `CYRILLIC letter ${codePointLabel(cps[i]!)} among Latin letters`;
      else if (GREEK.test(c)) confusable[i] = `GREEK letter ${codePointLabel(cps[i]!)} among Latin letters`;
    }
  };
  if (identifier) markWord(0, chars.length);
  else {
    let start = -1;
    for (let i = 0; i <= chars.length; i++) {
      const space = i === chars.length || (SPACE.test(chars[i]!) && !hidden[i]);
      if (space && start >= 0) {
        markWord(start, i);
        start = -1;
      } else if (!space && start < 0) start = i;
    }
  }

  const names = new Set<string>();
  let hiddenCount = 0;
  for (let i = 0; i < cps.length; i++) {
    if (hidden[i]) {
      hiddenCount++;
      names.add(`${characterName(cps[i]!)} (${codePointLabel(cps[i]!)})`);
    }
  }

  const shown = Math.min(chars.length, limit);
  const segments: Segment[] = [];
  let run = '';
  const flush = () => {
    if (run) segments.push({ kind: 'text', text: run });
    run = '';
  };
  for (let i = 0; i < shown; i++) {
    const cp = cps[i]!;
    if (hidden[i]) {
      flush();
      segments.push({
        kind: 'hidden',
        token: `⟨${codePointLabel(cp)}⟩`,
        name: `${characterName(cp)} (${codePointLabel(cp)})`,
      });
    } else if (confusable[i]) {
      flush();
      segments.push({ kind: 'confusable', text: chars[i]!, name: confusable[i]! });
    } else run += chars[i];
  }
  flush();

  return {
    length: chars.length,
    segments,
    truncated: shown < chars.length,
    hiddenCount,
    hiddenNames: [...names],
    mixedScripts,
  };
}
