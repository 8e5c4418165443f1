import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { tfjs: 'src/tfjs/index.ts', onnx: 'src/onnx/index.ts', 'onnx-node': 'src/onnx/node.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: [/^@tensorflow\//, /^onnxruntime/],
});
