import { CountersignError } from './errors.js';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;
const DURATION = /^([1-9][0-9]{0,6})(s|m|h|d)$/;

/** Parses `90s`, `15m`, `2h`, `1d` into seconds. Anything else is a coded error. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text);
  if (!match) {
    throw new CountersignError(
      'CS_CONFIG_INVALID',
      `not a duration: ${JSON.stringify(text)} (use e.g. 90s, 15m, 2h)`,
    );
  }
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}
