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

  it('protocol and the SDK use Web APIs only (no node:*), and the SDK never imports core, server or store', () => {
    for (const file of [...pkg('protocol'), ...pkg('sdk')]) {
      for (const spec of imports(file)) {
        expect(spec.startsWith('node:'), `${relative(ROOT, file)} imports ${spec}`).toBe(false);
        expect(
          /^@countersign\/(core|server|store|policy|cli)/.test(spec),
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

  it('the domain never reads the wall clock', () => {
    for (const file of pkg('core')) {
      const text = readFileSync(file, 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '');
      const allowed = file.endsWith('ports.ts'); // systemClock is the one adapter
      if (!allowed) expect(text, relative(ROOT, file)).not.toMatch(/Date\.now\(\)|new Date\(\)/);
    }
  });
});
