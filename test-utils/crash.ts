/** Helpers of the crash tests (a child process killed at seeded moments). */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** xorshift32 in [0, 1): the kill moments, reproducible from the seed. */
export function killRng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** tsx's loader (`node --import <url> child.ts`), resolved from a workspace package that depends on it. */
export function tsxLoaderUrl(packageDir = join(repoRoot, 'benchmarks')): string {
  return pathToFileURL(createRequire(join(packageDir, 'package.json')).resolve('tsx')).href;
}
