/**
 * Shared by the packages' test suites (not published): where the reference data lives, how to read
 * it, and the one tolerance check every parity test uses.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '@qf/io';
import { toFloat32 } from '@qf/io';
import { openSafetensors } from '@qf/io/node';
import { expect } from 'vitest';

/** Repository root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** `../shared/golden` next to the repository, as in CI. */
export const goldenDir = resolve(repoRoot, '../shared/golden');
/** Extra HF-generated cases shipped in the repo (fixtures/hf-random/README.md). */
export const hfRandomDir = join(repoRoot, 'fixtures/hf-random');

/** `dir`, or a clear error when the test data is missing. */
export function requireDir(dir: string): string {
  if (!existsSync(dir)) throw new Error(`test data not found: ${dir}`);
  return dir;
}

/** Reads every tensor of a safetensors file. */
export async function readAll(path: string): Promise<Record<string, HostTensor>> {
  const file = await openSafetensors(path);
  try {
    const out: Record<string, HostTensor> = {};
    for (const name of file.names()) out[name] = await file.read(name);
    return out;
  } finally {
    await file.close();
  }
}

/** Largest absolute difference between two tensors of the same size (NaN propagates). */
export function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  const x = toFloat32(a);
  const y = toFloat32(b);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs((x[i] as number) - (y[i] as number));
    if (!(d <= m)) m = d;
  }
  return m;
}

/** Asserts same shape and max |a - b| <= atol (default 1e-4), naming the tensor. */
export function expectClose(
  name: string,
  actual: HostTensor | undefined,
  expected: HostTensor | undefined,
  atol = 1e-4,
): void {
  expect(actual, `${name}: missing actual`).toBeDefined();
  expect(expected, `${name}: missing expected`).toBeDefined();
  if (!actual || !expected) return;
  expect([...actual.shape], `${name}: shape`).toEqual([...expected.shape]);
  const d = maxAbsDiff(actual, expected);
  expect(d, `${name}: max abs diff ${d}`).toBeLessThanOrEqual(atol);
}

/** An I64 [B, width] mask whose first `lengths[b]` entries of row b are 1. */
export function lengthsMask(lengths: number[], width: number): HostTensor<'I64'> {
  const data = new BigInt64Array(lengths.length * width);
  lengths.forEach((len, b) => {
    for (let i = 0; i < len; i++) data[b * width + i] = 1n;
  });
  return { dtype: 'I64', shape: [lengths.length, width], data };
}
