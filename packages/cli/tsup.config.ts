import { defineConfig } from 'tsup';

const common = {
  sourcemap: true,
  target: 'es2022',
  external: [/^@tensorflow\//, /^onnxruntime/],
} as const;

export default defineConfig([
  // The library entry (buildProgram, main, command helpers): ESM + CJS + .d.ts.
  { ...common, entry: { index: 'src/index.ts' }, format: ['esm', 'cjs'], dts: true },
  // The `qf` executable: ESM only.
  { ...common, entry: { bin: 'src/bin.ts' }, format: ['esm'], dts: false },
]);
