/**
 * The resource catalog: operator-owned facts matched by pattern. The most specific pattern
 * (most literal segments, then longest) wins. An unmatched resource is treated as restricted.
 */
import { CountersignError } from './errors.js';
import { DEFAULT_ISSUER } from './issuer-port.js';
import { matchesPattern, parsePattern, type ResourceName, type ResourcePattern } from './resource.js';
import { type ResourceFacts, SENSITIVITIES, type Sensitivity } from './types.js';

export interface CatalogEntryInput {
  readonly pattern: string;
  readonly sensitivity: string;
  readonly environment: string;
  readonly owner: string;
  readonly boundary: string;
  readonly audience?: string;
  /** The configured issuer for these resources; `access_token` when absent. */
  readonly issuer?: string;
}

/** Issuer names: what the catalog's `issuer:` and the configuration's `issuers:` keys use. */
export const ISSUER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

interface CatalogEntry {
  readonly pattern: ResourcePattern;
  readonly facts: ResourceFacts;
}

export const UNCATALOGUED: Omit<ResourceFacts, 'audience'> = {
  sensitivity: 'restricted',
  environment: 'unknown',
  owner: 'unknown',
  boundary: 'unknown',
  issuer: DEFAULT_ISSUER,
  pattern: null,
};

export class ResourceCatalog {
  readonly #entries: readonly CatalogEntry[];
  readonly #defaultAudience: string;

  private constructor(entries: CatalogEntry[], defaultAudience: string) {
    this.#entries = entries;
    this.#defaultAudience = defaultAudience;
  }

  /** Validates every entry; a bad catalog refuses to load (fail closed). */
  static from(entries: readonly CatalogEntryInput[], defaultAudience: string): ResourceCatalog {
    const seen = new Set<string>();
    const parsed = entries.map((entry, index): CatalogEntry => {
      const where = `catalog entry ${index + 1} (${JSON.stringify(entry.pattern)})`;
      if (typeof entry.pattern !== 'string')
        throw new CountersignError('CS_CONFIG_INVALID', `${where}: pattern missing`);
      if (seen.has(entry.pattern))
        throw new CountersignError('CS_CONFIG_INVALID', `${where}: duplicate pattern`);
      seen.add(entry.pattern);
      if (!SENSITIVITIES.includes(entry.sensitivity as Sensitivity)) {
        throw new CountersignError(
          'CS_CONFIG_INVALID',
          `${where}: sensitivity must be one of ${SENSITIVITIES.join(', ')}`,
        );
      }
      for (const field of ['environment', 'owner', 'boundary'] as const) {
        if (typeof entry[field] !== 'string' || entry[field].length === 0) {
          throw new CountersignError('CS_CONFIG_INVALID', `${where}: ${field} is required`);
        }
      }
      if (
        entry.issuer !== undefined &&
        (typeof entry.issuer !== 'string' || !ISSUER_NAME.test(entry.issuer))
      ) {
        throw new CountersignError('CS_CONFIG_INVALID', `${where}: issuer must match ${ISSUER_NAME.source}`);
      }
      const pattern = parsePattern(entry.pattern);
      return {
        pattern,
        facts: {
          sensitivity: entry.sensitivity as Sensitivity,
          environment: entry.environment,
          owner: entry.owner,
          boundary: entry.boundary,
          audience:
            entry.audience ?? `${pattern.scheme}://${pattern.segments.filter((s) => s !== '*').join('/')}`,
          issuer: entry.issuer ?? DEFAULT_ISSUER,
          pattern: entry.pattern,
        },
      };
    });
    parsed.sort(
      (a, b) =>
        b.pattern.specificity - a.pattern.specificity ||
        b.pattern.segments.length - a.pattern.segments.length ||
        (a.pattern.text < b.pattern.text ? -1 : 1),
    );
    return new ResourceCatalog(parsed, defaultAudience);
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Every issuer name the catalog refers to (to check them against the configuration). */
  issuerNames(): string[] {
    return [...new Set(this.#entries.map((e) => e.facts.issuer))].sort();
  }

  resolve(name: ResourceName): ResourceFacts {
    for (const entry of this.#entries) {
      if (matchesPattern(entry.pattern, name)) return entry.facts;
    }
    return { ...UNCATALOGUED, audience: this.#defaultAudience };
  }
}
