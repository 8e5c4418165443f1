/**
 * The error catalogue (docs/errors.md) cannot go stale: every error class and every code in the
 * sources of every package is documented there, and every code documented there is still used.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const catalogue = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');

/** Every `.ts` file under `packages/<pkg>/src`. */
function sourceFiles(): string[] {
  const out: string[] = [];
  const packages = join(repoRoot, 'packages');
  for (const pkg of readdirSync(packages)) {
    let entries: string[];
    try {
      entries = readdirSync(join(packages, pkg, 'src'), { recursive: true }) as string[];
    } catch {
      continue;
    }
    for (const e of entries) if (e.endsWith('.ts')) out.push(join(packages, pkg, 'src', e));
  }
  return out;
}

const CODE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;

/** Code lines without comments (TSDoc mentions codes in backticks; code uses them as quoted literals). */
function codeLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\/\/.*$/, ''))
    .filter((l) => !/^\s*(\*|\/\*\*?)/.test(l));
}

interface Found {
  codes: Map<string, string[]>;
  classes: Map<string, string>;
}

function scanSources(): Found {
  const codes = new Map<string, string[]>();
  const extendsOf = new Map<string, { base: string; file: string }>();
  for (const file of sourceFiles()) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(repoRoot, file);
    for (const line of codeLines(text)) {
      for (const m of line.matchAll(/(['"])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\1/g)) {
        const code = m[2]!;
        codes.set(code, [...(codes.get(code) ?? []), rel]);
      }
    }
    for (const m of text.matchAll(/class (\w+) extends (\w+)/g))
      extendsOf.set(m[1]!, { base: m[2]!, file: rel });
  }
  // error classes: QfError and everything that extends it, transitively
  const classes = new Map<string, string>();
  const isQf = (name: string, depth = 0): boolean =>
    name === 'QfError' || (depth < 10 && extendsOf.has(name) && isQf(extendsOf.get(name)!.base, depth + 1));
  for (const [name, { file }] of extendsOf) if (isQf(name)) classes.set(name, file);
  return { codes, classes };
}

/** Codes documented in the catalogue: the first column of the code tables, `| \`CODE\` | meaning | fix |`. */
function documentedCodes(): Set<string> {
  return new Set([...catalogue.matchAll(/^\| `([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)` \|/gm)].map((m) => m[1]!));
}

describe('docs/errors.md', () => {
  const found = scanSources();

  it('the scan finds the error classes and codes (sanity check of the extraction)', () => {
    for (const cls of [
      'QfError',
      'SafetensorsError',
      'SourceError',
      'CheckpointError',
      'ConfigError',
      'TensorError',
    ]) {
      expect(found.classes.has(cls) || cls === 'QfError').toBe(true);
    }
    expect(found.classes.has('OnnxBackendError')).toBe(true);
    expect(found.classes.has('CliError')).toBe(true);
    for (const code of [
      'SAFETENSORS_TRUNCATED',
      'TENSOR_SHAPE',
      'CONFIG_INVALID',
      'ONNX_RUNTIME',
      'CLI_BAD_OPTION',
    ]) {
      expect(found.codes.has(code)).toBe(true);
    }
    expect(found.codes.size).toBeGreaterThan(50);
    for (const code of found.codes.keys()) expect(code).toMatch(CODE);
  });

  it('documents every code used in packages/*/src', () => {
    const documented = documentedCodes();
    const missing = [...found.codes]
      .filter(([code]) => !documented.has(code))
      .map(([code, files]) => `${code} (${[...new Set(files)].join(', ')})`);
    expect(missing, 'add these codes to docs/errors.md').toEqual([]);
  });

  it('documents every error class, in the classes table', () => {
    const table = catalogue.slice(catalogue.indexOf('## Classes'), catalogue.indexOf('## Codes'));
    const missing = [...found.classes]
      .filter(([cls]) => !table.includes(`| \`${cls}\` |`))
      .map(([cls, file]) => `${cls} (${file})`);
    expect(missing, 'add these classes to the table in docs/errors.md').toEqual([]);
    expect(table).toContain('| `QfError` |');
  });

  it('lists no code that the sources no longer use', () => {
    const stale = [...documentedCodes()].filter((c) => !found.codes.has(c));
    expect(stale, 'remove these codes from docs/errors.md (or they are spelled differently)').toEqual([]);
  });
});
