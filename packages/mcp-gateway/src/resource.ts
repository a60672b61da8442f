/**
 * Per-tool resource mapping: a template such as `github://{repo}@{branch}` filled from the
 * call's arguments. A value fills one placeholder only if it is plain path text (letters,
 * digits, `._~-`, and `/` between non-dot segments), so an argument can never add a scheme,
 * an `@`, a query, an escape or a `..` to the resource (THREATS.md F2). What a value may not
 * be refuses the call; the server's resource grammar checks the whole result again.
 */
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]{0,63})\}/g;
const SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

export class ResourceMappingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResourceMappingError';
  }
}

function valueText(name: string, value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) text = String(value);
  else if (value === undefined)
    throw new ResourceMappingError(`argument ${name} is required to name the resource`);
  else
    throw new ResourceMappingError(
      `argument ${name} must be a string or a whole number to name the resource`,
    );
  if (text.length === 0 || text.length > 256)
    throw new ResourceMappingError(`argument ${name} must be 1-256 characters to name the resource`);
  for (const segment of text.split('/')) {
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..') {
      throw new ResourceMappingError(
        `argument ${name} may only hold letters, digits, . _ ~ - and / between segments (no empty, . or .. segment) to name the resource`,
      );
    }
  }
  return text;
}

/** The resource a call names: the template filled from `args`, or the default. */
export function mapResource(
  template: string | undefined,
  upstream: string,
  tool: string,
  args: Readonly<Record<string, unknown>>,
): string {
  if (template === undefined) return `mcp://${upstream}/${tool}`;
  return template.replace(PLACEHOLDER, (_whole, name: string) =>
    valueText(name, Object.hasOwn(args, name) ? args[name] : undefined),
  );
}

/**
 * The resource every call of a tool names whatever its arguments (`hide_forbidden`): its
 * template when it has no placeholder, the default `mcp://<upstream>/<tool>` when it has no
 * template; null when the resource comes from the arguments (no one answer stands for all calls).
 */
export function fixedResource(template: string | undefined, upstream: string, tool: string): string | null {
  if (template === undefined) return `mcp://${upstream}/${tool}`;
  return new RegExp(PLACEHOLDER.source).test(template) ? null : template;
}
