import { defineConfig } from 'tsup';

export default defineConfig({
  // grad-worker: the worker thread of the data-parallel encoder pre-training (parallel.ts).
  entry: { index: 'src/index.ts', 'grad-worker': 'src/grad-worker.ts' },
  shims: true,
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: [/^@tensorflow\//, /^onnxruntime/],
});
