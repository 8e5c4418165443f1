// Vite config of the browser app. The workspace packages are compiled from their TypeScript entry
// points (the same ones tsconfig.base.json and vitest use), so the app needs no `pnpm build` of the
// packages first. The runtimes' wasm files are served from node_modules in dev and copied into the
// build (wasm/, ort/): the app fetches nothing from a CDN.
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Plugin, defineConfig } from 'vite';
// @ts-expect-error plain ESM helper shared with examples/browser-retrieval, no type declarations
import { copyRuntimes, runtimeFiles } from './tools/runtimes.mjs';
// @ts-expect-error plain ESM helper, no type declarations
import { ISOLATION_HEADERS } from './tools/serve.mjs';

const pkg = (p: string) => fileURLToPath(new URL(`../../packages/${p}`, import.meta.url));

/** Serves the tfjs-wasm / ORT runtime files in dev and copies them into the build output. */
function runtimes(): Plugin {
  let outDir = 'dist';
  return {
    name: 'qf-runtimes',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    configureServer(server) {
      const files = new Map<string, string>(
        (runtimeFiles() as { from: string; to: string }[]).map((f) => [`/${f.to}`, f.from]),
      );
      server.middlewares.use((req, res, next) => {
        const file = files.get((req.url ?? '').split('?')[0] as string);
        if (!file) return next();
        res.setHeader('Content-Type', file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        createReadStream(file).pipe(res);
      });
    },
    generateBundle(_options, bundle) {
      // onnxruntime-web's bundle names its wasm with `new URL(..., import.meta.url)`, which Vite
      // turns into a 28 MB asset; the app points `ort.env.wasm.wasmPaths` at ort/ instead, so that
      // copy would never be fetched.
      for (const name of Object.keys(bundle))
        if (/ort-wasm-simd-threaded\.jsep-[^/]*\.wasm$/.test(name)) delete bundle[name];
    },
    closeBundle() {
      copyRuntimes(outDir);
    },
  };
}

export default defineConfig({
  base: './',
  resolve: {
    alias: [
      { find: /^@qf\/io$/, replacement: pkg('io/src/index.ts') },
      { find: /^@qf\/core$/, replacement: pkg('core/src/index.ts') },
      { find: /^@qf\/bridge$/, replacement: pkg('bridge/src/index.ts') },
      { find: /^@qf\/shapes$/, replacement: pkg('shapes/src/index.ts') },
      { find: /^@qf\/backends\/tfjs$/, replacement: pkg('backends/src/tfjs/index.ts') },
      { find: /^@qf\/backends\/onnx$/, replacement: pkg('backends/src/onnx/index.ts') },
    ],
    dedupe: ['@tensorflow/tfjs-core'],
  },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 2048, sourcemap: false },
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
  plugins: [runtimes()],
});
