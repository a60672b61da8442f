/**
 * Untrusted text helpers (DESIGN.md invariant 6). Agent-supplied text is kept as sent (the
 * digest covers the exact bytes) but flagged when it carries characters that change what a
 * reader sees: bidirectional controls (Trojan Source, CVE-2021-42574) and invisible ones.
 */

// Bidi embeddings/overrides/isolates and marks: U+202A-202E, U+2066-2069, U+200E, U+200F, U+061C.
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/u;
// Zero-width and other invisible format characters, plus C0/C1 controls other than tab and newline.
const INVISIBLE = /[\u200B-\u200D\u2060-\u2064\uFEFF\u00AD\u180E\u0000-\u0008\u000B-\u001F\u007F-\u009F]/u;

export function hasBidiControls(text: string): boolean {
  return BIDI.test(text);
}

export function hasInvisibleCharacters(text: string): boolean {
  return INVISIBLE.test(text);
}

/** True when a display string would mislead a human reader. */
export function isSuspiciousText(text: string): boolean {
  return hasBidiControls(text) || hasInvisibleCharacters(text);
}
