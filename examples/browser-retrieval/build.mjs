// Bundles src/main.ts for the browser (split into chunks: the page loads only the runtime it uses)
// and copies the runtimes' wasm files next to it: tfjs's to wasm/, ONNX Runtime Web's to ort/ (the
// list is shared with examples/browser: ../browser/tools/runtimes.mjs).
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { copyRuntimes } from '../browser/tools/runtimes.mjs';

export { ORT_FILES } from '../browser/tools/runtimes.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Bundles the page into `outDir` (default `dist/`). */
export async function buildPage(outDir = join(here, 'dist')) {
  rmSync(join(outDir, 'chunks'), { recursive: true, force: true });
  await build({
    entryPoints: { main: join(here, 'src/main.ts') },
    outdir: outDir,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
    // tfjs-backend-wasm's browser build references Node modules behind runtime checks.
    external: ['fs', 'path', 'worker_threads', 'perf_hooks', 'os', 'crypto'],
  });
  copyRuntimes(outDir);
  return outDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildPage();
  console.log('built dist/main.js');
}
