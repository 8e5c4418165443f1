// A small static server for the example, with HEAD and HTTP Range support (the page reads only the
// tensors it needs). Serves the page, its bundle, and a model directory + inputs file.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const golden = join(here, '../../../shared/golden/public_small');
const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript', // ORT's wasm glue is a module: browsers reject other MIME types
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

/**
 * Starts the server. `routes` maps URL prefixes to directories or files. `isolate` adds the COOP/COEP
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
  const resolvePath = (url) => {
    const path = decodeURIComponent(new URL(url, 'http://x').pathname);
    if (path === '/' || path === '/index.html') return table['/'];
    for (const [prefix, target] of Object.entries(table)) {
      if (prefix === '/') continue;
      if (prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix) {
        if (!prefix.endsWith('/')) return target;
        const rest = normalize(path.slice(prefix.length));
        if (rest.startsWith('..')) return undefined;
        return rest === '.' || rest === '' ? join(target, 'index.html') : join(target, rest);
      }
    }
    return undefined;
  };
  const server = createServer((req, res) => {
    const file = resolvePath(req.url ?? '/');
    let size;
    try {
      size = file ? statSync(file).size : undefined;
    } catch {
      size = undefined;
    }
    if (size === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers = {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ...(isolate
        ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
        : {}),
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > end || start >= size) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, {
        ...headers,
        'Content-Range': `bytes ${start}-${end}/${size}`,
        'Content-Length': end - start + 1,
      });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${server.address().port}` }),
    );
  });
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
