// Serves this example: the page, its bundle, and a model directory + inputs file, through the
// browser examples' shared static server (../browser/tools/serve.mjs: HEAD + HTTP Range, optional
// COOP/COEP).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve as serveRoutes } from '../browser/tools/serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const golden = join(here, '../../../shared/golden/public_small');

/**
 * Starts the server. `routes` maps URL prefixes to directories or files (default: the golden
 * `public_small` model as /model/, its inputs, dist/ and index.html). `isolate` adds the COOP/COEP
 * headers that make the page cross-origin isolated, which SharedArrayBuffer (wasm threads) needs:
 * ONNX Runtime Web then runs multi-threaded, and tfjs-wasm picks its threaded binary.
 * @returns the server and its base URL
 */
export function serve({ port = 0, routes, isolate = false } = {}) {
  const table = routes ?? {
    '/model/': join(golden, 'hf'),
    '/inputs.safetensors': join(golden, 'inputs.safetensors'),
    '/dist/': join(here, 'dist'),
    '/': join(here, 'index.html'),
  };
  return serveRoutes({ port, routes: table, isolate });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const isolate = process.argv.includes('--isolate');
  const { url } = await serve({ port: Number(process.env.PORT ?? 8080), isolate });
  console.log(`open ${url}/?backend=wasm (also: webgl, webgpu, cpu, onnx-wasm, onnx-webgpu)`);
  console.log(
    isolate
      ? 'cross-origin isolated (COOP/COEP): wasm backends may use threads'
      : 'not cross-origin isolated: wasm backends run single-threaded (add --isolate for threads)',
  );
}
