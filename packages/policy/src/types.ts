/** One policy file as the loader sees it: a name (such as `secrets.cedar`) and its Cedar text. */
export interface PolicyFile {
  readonly name: string;
  readonly text: string;
}

/** What `loadPolicySet` takes: policy files and the Cedar schema (human-readable syntax). */
export interface PolicySetFiles {
  readonly policies: ReadonlyArray<PolicyFile>;
  readonly schema: string;
}

export interface LoadOptions {
  /**
   * Preparse one policy set per action (policies scoped to other actions left out) so a
   * call evaluates only the policies that can apply. Same answers either way (a property
   * test checks it); on by default because it is faster: with the 12 example policies,
   * about 150 us a call against 170-180 us for one set (`bench/evaluate.ts`, 2 cores).
   */
  readonly splitByAction?: boolean;
}

/** A loaded policy: its id (from `@id`, else `<file>#<index>`), where it came from, and what it says. */
export interface LoadedPolicy {
  readonly id: string;
  readonly file: string;
  /** Position of the policy in its file, counting from 0. */
  readonly index: number;
  readonly effect: 'permit' | 'forbid';
  readonly annotations: Readonly<Record<string, string>>;
  readonly text: string;
}

/** The `policy validate` answer: a summary, or every problem found (not only the first). */
export type PolicyDirectoryValidation =
  | { readonly ok: true; readonly version: string; readonly policyCount: number }
  | { readonly ok: false; readonly errors: readonly string[] };
