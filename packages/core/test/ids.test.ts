import { describe, expect, it } from 'vitest';
import { newRowId, randomId } from '../src/index.js';

describe('ids', () => {
  it('row ids sort by their millisecond and keep 74 random bits', () => {
    const earlier = Array.from({ length: 1000 }, () => newRowId('req', 1_796_000_000_000));
    const later = newRowId('req', 1_796_000_000_001);
    for (const id of earlier) {
      expect(id).toMatch(/^req_[0-9a-f]{32}$/);
      expect(id < later).toBe(true);
    }
    expect(new Set(earlier).size).toBe(1000);
    // 12 hex digits of time, then a random UUID's last 20 (its version digit and 2 variant bits are fixed).
    expect(earlier[0]!.slice(4, 16)).toBe((1_796_000_000_000).toString(16).padStart(12, '0'));
  });

  it('a time that would break the shape or the order is refused', () => {
    for (const bad of [Number.NaN, -1, 1.5, 2 ** 48]) expect(() => newRowId('req', bad)).toThrow(RangeError);
  });

  it('random ids are unguessable handles: 32 random hex digits', () => {
    const ids = Array.from({ length: 1000 }, () => randomId('chl'));
    for (const id of ids) expect(id).toMatch(/^chl_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(1000);
  });
});
