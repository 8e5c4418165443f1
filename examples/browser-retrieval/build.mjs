// Bundles src/main.ts for the browser (split into chunks: the page loads only the runtime it uses)
// and copies the runtimes' wasm files next to it: tfjs's to wasm/, ONNX Runtime Web's to ort/.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The files `import('onnxruntime-web')` loads at run time: its default browser entry
 * (dist/ort.bundle.min.mjs, wasm + WebGPU EPs) imports this Emscripten glue and instantiates this
 * binary from `ort.env.wasm.wasmPaths`. The other dist/ files serve other entry points
 * (onnxruntime-web/wasm, /webgpu, /jspi, /webgl) and are not copied.
 */
export const ORT_FILES = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

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
  const tfjsWasm = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  mkdirSync(join(outDir, 'wasm'), { recursive: true });
  for (const f of readdirSync(tfjsWasm).filter((f) => f.endsWith('.wasm'))) {
    copyFileSync(join(tfjsWasm, f), join(outDir, 'wasm', f));
  }
  const ortDist = dirname(require.resolve('onnxruntime-web'));
  mkdirSync(join(outDir, 'ort'), { recursive: true });
  for (const f of ORT_FILES) copyFileSync(join(ortDist, f), join(outDir, 'ort', f));
  return outDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildPage();
  console.log('built dist/main.js');
}
