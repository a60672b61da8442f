/**
 * Statement shapes compiled by Kysely once, then reused with new parameters.
 *
 * Building and compiling a Kysely query costs a few microseconds each time, and a decision
 * runs about ten of them on the writer's one thread. A prepared shape is compiled once with a
 * placeholder object in place of each value; Kysely turns each placeholder into a bound
 * parameter (never into SQL text), so reusing the SQL with the real values in the same
 * positions is exactly what compiling again would produce. Values stay bound parameters:
 * nothing is spliced into SQL here.
 */
import type { CompiledQuery, Kysely } from 'kysely';

/** A named value position in a prepared shape. */
class Slot {
  constructor(readonly name: string) {}
}

interface Shape {
  readonly sql: string;
  readonly query: CompiledQuery['query'];
  readonly queryId: CompiledQuery['queryId'];
  /** Per parameter: the slot it stands for, or a constant the shape itself contains (a LIMIT). */
  readonly parameters: readonly unknown[];
  readonly names: readonly string[];
}

// Per Kysely instance: a shape compiled for one dialect is never reused for another.
const shapes = new WeakMap<object, Map<string, Shape>>();

/**
 * The compiled query for `key` with `values` bound. `build` receives one placeholder per key
 * of `values` and must use every one of them, in any order, and nothing else that varies: the
 * shape is keyed by `key` alone. An undefined value is refused (Kysely would have dropped the
 * column; a prepared shape cannot).
 */
export function prepared<V extends Record<string, unknown>>(
  db: Kysely<never> | Kysely<unknown> | object,
  key: string,
  values: V,
  build: (slots: V) => { compile(): CompiledQuery },
): CompiledQuery {
  let byKey = shapes.get(db);
  if (!byKey) {
    byKey = new Map();
    shapes.set(db, byKey);
  }
  let shape = byKey.get(key);
  if (!shape) {
    const names = Object.keys(values);
    const slots = Object.fromEntries(names.map((name) => [name, new Slot(name)])) as unknown as V;
    const compiled = build(slots).compile();
    const used = new Set(compiled.parameters.filter((p) => p instanceof Slot).map((p) => (p as Slot).name));
    const unused = names.filter((name) => !used.has(name));
    if (unused.length > 0) throw new TypeError(`prepared ${key}: values ${unused.join(', ')} are not used`);
    shape = {
      sql: compiled.sql,
      query: compiled.query,
      queryId: compiled.queryId,
      parameters: compiled.parameters,
      names,
    };
    byKey.set(key, shape);
  } else if (Object.keys(values).length !== shape.names.length) {
    throw new TypeError(`prepared ${key}: called with other values than its shape`);
  }
  const parameters = shape.parameters.map((p) => {
    if (!(p instanceof Slot)) return p;
    const value = values[p.name];
    if (value === undefined) throw new TypeError(`prepared ${key}: ${p.name} is undefined`);
    return value;
  });
  return { sql: shape.sql, query: shape.query, queryId: shape.queryId, parameters };
}
