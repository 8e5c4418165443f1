import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@qf\/io\/node$/, replacement: src('io/src/node/index.ts') },
      { find: /^@qf\/io$/, replacement: src('io/src/index.ts') },
      { find: /^@qf\/core\/node$/, replacement: src('core/src/node.ts') },
      { find: /^@qf\/core$/, replacement: src('core/src/index.ts') },
      { find: /^@qf\/bridge\/node$/, replacement: src('bridge/src/node.ts') },
      { find: /^@qf\/bridge$/, replacement: src('bridge/src/index.ts') },
      { find: /^@qf\/losses$/, replacement: src('losses/src/index.ts') },
      { find: /^@qf\/train\/node$/, replacement: src('train/src/node.ts') },
      { find: /^@qf\/train$/, replacement: src('train/src/index.ts') },
      { find: /^@qf\/shapes$/, replacement: src('shapes/src/index.ts') },
      { find: /^@qf\/demo$/, replacement: src('demo/src/index.ts') },
      { find: /^@qf\/backends\/tfjs$/, replacement: src('backends/src/tfjs/index.ts') },
      { find: /^@qf\/backends\/onnx\/node$/, replacement: src('backends/src/onnx/node.ts') },
      { find: /^@qf\/backends\/onnx$/, replacement: src('backends/src/onnx/index.ts') },
    ],
  },
  test: {
    // QF_TEST_JSON=path also writes a JSON report (CI prints a summary line from it).
    reporters: process.env.QF_TEST_JSON ? ['default', 'json'] : ['default'],
    outputFile: process.env.QF_TEST_JSON ? { json: process.env.QF_TEST_JSON } : undefined,
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'benchmarks/test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
