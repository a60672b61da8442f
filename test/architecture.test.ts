/** The layout's rules, checked: arrows point toward core and protocol; public surfaces are explicit. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g),
    ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
}

const pkg = (name: string) => sources(join(ROOT, 'packages', name, 'src'));

describe('architecture', () => {
  it('core imports nothing from the repo and no node:* module', () => {
    for (const file of pkg('core')) {
      for (const spec of imports(file)) {
        expect(
          spec.startsWith('node:') || spec.startsWith('@countersign/'),
          `${relative(ROOT, file)} imports ${spec}`,
        ).toBe(false);
      }
    }
  });

  it('the SDK main entry and ./verify use Web APIs only: no node:* anywhere in their import graphs', () => {
    const sdk = join(ROOT, 'packages', 'sdk');
    const exportsMap = JSON.parse(readFileSync(join(sdk, 'package.json'), 'utf8')).exports as Record<
      string,
      { default: string }
    >;
    for (const entry of ['.', './verify']) {
      const seen = new Set<string>();
      const stack = [join(sdk, exportsMap[entry]!.default)];
      while (stack.length > 0) {
        const file = stack.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        for (const spec of imports(file)) {
          expect(spec.startsWith('node:'), `${entry}: ${relative(ROOT, file)} imports ${spec}`).toBe(false);
          if (spec.startsWith('.')) stack.push(join(file, '..', spec.replace(/\.js$/, '.ts')));
        }
      }
      expect(seen.size).toBeGreaterThan(0);
    }
    // The Node-only helpers (a token file) are their own entry, never reached from the main one.
    expect(exportsMap['./node']!.default).toBe('./src/node.ts');
  });

  it('protocol and the SDK (except its ./node entry) use Web APIs only, and the SDK never imports core, server or store', () => {
    for (const file of [
      ...pkg('protocol'),
      ...pkg('sdk').filter((f) => !f.endsWith(join('sdk', 'src', 'node.ts'))),
    ]) {
      for (const spec of imports(file)) {
        expect(spec.startsWith('node:'), `${relative(ROOT, file)} imports ${spec}`).toBe(false);
        expect(
          /^@countersign\/(core|server|store|policy|cli)/.test(spec),
          `${relative(ROOT, file)} imports ${spec}`,
        ).toBe(false);
      }
    }
  });

  it('the MCP gateway is an SDK client, never a second policy engine: no server, store or policy imports', () => {
    const files = pkg('mcp-gateway');
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      for (const spec of imports(file)) {
        expect(
          /^@countersign\/(server|store|policy|cli)|cedar/.test(spec),
          `${relative(ROOT, file)} imports ${spec}`,
        ).toBe(false);
      }
    }
  });

  it('no package reaches into another package by relative path', () => {
    for (const name of readdirSync(join(ROOT, 'packages'))) {
      for (const file of pkg(name)) {
        for (const spec of imports(file)) {
          expect(spec.startsWith('../../'), `${relative(ROOT, file)} imports ${spec}`).toBe(false);
        }
      }
    }
  });

  it('public surfaces are explicit: no `export *`', () => {
    for (const name of readdirSync(join(ROOT, 'packages'))) {
      for (const file of pkg(name)) {
        expect(readFileSync(file, 'utf8'), relative(ROOT, file)).not.toMatch(/export \*/);
      }
    }
  });

  it("the store's main entry never loads pg: only @countersign/store/postgres does", () => {
    const dir = join(ROOT, 'packages/store/src');
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of imports(join(dir, file))) {
        expect(spec === 'pg' || spec.startsWith('pg/'), `${file} imports ${spec}`).toBe(false);
        if (spec.startsWith('./')) visit(spec.slice(2).replace(/\.js$/, '.ts'));
      }
    };
    visit('index.ts');
    expect(seen.has('sqlite.ts')).toBe(true);
    expect(seen.has('postgres.ts')).toBe(false);
    expect(imports(join(dir, 'postgres.ts'))).toContain('pg');
  });

  it('the domain never reads the wall clock', () => {
    for (const file of pkg('core')) {
      const text = readFileSync(file, 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '');
      const allowed = file.endsWith('ports.ts'); // systemClock is the one adapter
      if (!allowed) expect(text, relative(ROOT, file)).not.toMatch(/Date\.now\(\)|new Date\(\)/);
    }
  });
});

describe('no back door to approval (THREATS.md A13, A14)', () => {
  const all = readdirSync(join(ROOT, 'packages')).flatMap((name) => pkg(name));
  const uses = (needle: RegExp) =>
    all.filter((f) => needle.test(readFileSync(f, 'utf8'))).map((f) => relative(ROOT, f));
  // The routes verify a step-up passkey through one helper: it must check the passkey is the
  // reviewer's own (A10) and verify the assertion against the expected challenge.
  const stepUpVerifies = (route: string) => {
    const start = route.indexOf('async function verifyStepUp(');
    const body = route.slice(start, route.indexOf('\n  }\n', start));
    return (
      start > 0 &&
      body.includes('credential.reviewerId !== reviewerId') &&
      body.includes('await verifyAssertion(response, expected, credential)')
    );
  };

  it('A13 only castVote turns a pending review into an allow, and only the passkey-verified decision route calls it', () => {
    expect(uses(/finishPendingRequest\([^)]*'allowed'/)).toEqual(['packages/core/src/usecases/cast-vote.ts']);
    expect(uses(/\bcastVote\(/).sort()).toEqual([
      'packages/core/src/usecases/cast-vote.ts',
      'packages/server/src/routes/console.ts',
    ]);
    const route = readFileSync(join(ROOT, 'packages/server/src/routes/console.ts'), 'utf8');
    // castVote runs right after the WebAuthn verification in the same handler.
    expect(stepUpVerifies(route)).toBe(true);
    const verify = route.lastIndexOf('await verifyStepUp(reviewer.id, value.response, expected)');
    const vote = route.indexOf('await castVote(');
    expect(verify).toBeGreaterThan(0);
    expect(vote).toBeGreaterThan(verify);
  });

  it('issue 8: only the passkey-verified adoption route adopts a suggested policy, and writes it only after the audited adoption', () => {
    expect(uses(/\bwriteAdoptedPolicy\(/).sort()).toEqual([
      'packages/server/src/routes/console.ts',
      'packages/server/src/suggestions.ts',
    ]);
    expect(uses(/\badoptPolicy\(/).sort()).toEqual([
      'packages/core/src/usecases/adopt-policy.ts',
      'packages/server/src/routes/console.ts',
    ]);
    const route = readFileSync(join(ROOT, 'packages/server/src/routes/console.ts'), 'utf8');
    expect(stepUpVerifies(route)).toBe(true);
    const verify = route.indexOf('await verifyStepUp(reviewer.id, value.response, expectedAdoption)');
    const adopt = route.indexOf('await adoptPolicy(');
    const write = route.indexOf('writeAdoptedPolicy(deps.config');
    expect(verify).toBeGreaterThan(0);
    expect(adopt).toBeGreaterThan(verify);
    expect(write).toBeGreaterThan(adopt);
  });

  it('A14 the API has no batch or bulk decision: one decision per request per assertion', async () => {
    const { startHarness } = await import('./support/harness.js');
    const h = await startHarness();
    try {
      const paths = h.server.app.routes.map((r) => `${r.method} ${r.path}`);
      expect(paths.filter((p) => /batch|bulk/i.test(p))).toEqual([]);
      const deciding = [...new Set(paths.filter((p) => /decision/.test(p)))];
      expect(deciding.sort()).toEqual([
        'POST /v1/console/requests/:id/decision',
        'POST /v1/console/requests/:id/decision/options',
      ]);
    } finally {
      await h.close();
    }
  });
});
