// The runtime files the browser examples serve next to their bundles, copied from node_modules at
// build time (no CDN): tfjs-backend-wasm's binaries to wasm/ and ONNX Runtime Web's to ort/.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * The files `import('onnxruntime-web')` loads at run time: its default browser entry
 * (dist/ort.bundle.min.mjs, wasm + WebGPU EPs) imports this Emscripten glue and instantiates this
 * binary from `ort.env.wasm.wasmPaths`. The other dist/ files serve other entry points
 * (onnxruntime-web/wasm, /webgpu, /jspi, /webgl) and are not copied.
 */
export const ORT_FILES = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

/** Every runtime file as `{ from: absolute path, to: path under the output directory }`. */
export function runtimeFiles() {
  const tfjsWasm = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  const ortDist = dirname(require.resolve('onnxruntime-web'));
  return [
    ...readdirSync(tfjsWasm)
      .filter((f) => f.endsWith('.wasm'))
      .map((f) => ({ from: join(tfjsWasm, f), to: `wasm/${f}` })),
    ...ORT_FILES.map((f) => ({ from: join(ortDist, f), to: `ort/${f}` })),
  ];
}

/** Copies the runtime files into `outDir` (wasm/, ort/). */
export function copyRuntimes(outDir) {
  for (const { from, to } of runtimeFiles()) {
    mkdirSync(dirname(join(outDir, to)), { recursive: true });
    copyFileSync(from, join(outDir, to));
  }
}
