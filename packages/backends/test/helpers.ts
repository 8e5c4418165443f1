import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '@qf/io';
import { toFloat32 } from '@qf/io';
import { openSafetensors } from '@qf/io/node';
import { expect } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root. */
export const repoRoot = resolve(here, '../../..');
/** `../shared/golden` next to the repository, as in CI. */
export const goldenDir = resolve(repoRoot, '../shared/golden');
/** Extra HF-generated cases shipped in the repo. */
export const hfRandomDir = join(repoRoot, 'fixtures/hf-random');

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

/** Largest absolute difference between two tensors of the same shape. */
export function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  const x = toFloat32(a);
  const y = toFloat32(b);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs((x[i] as number) - (y[i] as number));
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}

/** Asserts same shape and max |a - b| <= atol, naming the tensor. */
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

/** A host tensor whose first `len` entries of row b are 1, the rest 0. */
export function lengthsMask(lengths: number[], width: number): HostTensor<'I64'> {
  const data = new BigInt64Array(lengths.length * width);
  lengths.forEach((len, b) => {
    for (let i = 0; i < len; i++) data[b * width + i] = 1n;
  });
  return { dtype: 'I64', shape: [lengths.length, width], data };
}
