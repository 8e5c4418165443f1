// Bundles src/main.ts for the browser and copies tfjs's wasm binaries next to it.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Bundles the page into `outDir` (default `dist/`). */
export async function buildPage(outDir = join(here, 'dist')) {
  await build({
    entryPoints: [join(here, 'src/main.ts')],
    outfile: join(outDir, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
    // tfjs-backend-wasm's browser build references Node modules behind runtime checks.
    external: ['fs', 'path', 'worker_threads', 'perf_hooks', 'os', 'crypto'],
  });
  const wasmDist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  mkdirSync(join(outDir, 'wasm'), { recursive: true });
  for (const f of readdirSync(wasmDist).filter((f) => f.endsWith('.wasm'))) {
    copyFileSync(join(wasmDist, f), join(outDir, 'wasm', f));
  }
  return outDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildPage();
  console.log('built dist/main.js');
}
