// The static server of the browser examples (shared by examples/browser and
// examples/browser-retrieval): HEAD and HTTP Range support (pages read only the tensors they need),
// optional COOP/COEP headers (cross-origin isolation: SharedArrayBuffer, so wasm threads), no
// compression, localhost only.
//
//   node tools/serve.mjs --dist dist [--isolate] [--port 8080] [--mount /checkpoint/=some/dir ...]
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript', // ORT's wasm glue is a module: browsers reject other MIME types
  '.css': 'text/css',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The COOP/COEP pair that makes a page cross-origin isolated. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * Maps a URL path to a file. `routes` maps URL prefixes to directories (prefix ending in `/`) or
 * files (exact path); `'/'` is the index page, or with `root` a directory served for every path no
 * other prefix takes. Paths escaping a directory resolve to nothing.
 */
function resolver(routes, root) {
  const entries = Object.entries(routes).sort((a, b) => b[0].length - a[0].length);
  return (url) => {
    const path = decodeURIComponent(new URL(url, 'http://x').pathname);
    for (const [prefix, target] of entries) {
      if (prefix === '/') continue;
      if (prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix) {
        if (!prefix.endsWith('/')) return target;
        const rest = normalize(path.slice(prefix.length));
        if (rest.startsWith('..')) return undefined;
        return rest === '.' || rest === '' ? join(target, 'index.html') : join(target, rest);
      }
    }
    if (path === '/' || path === '/index.html') return routes['/'] ?? (root && join(root, 'index.html'));
    if (!root) return undefined;
    const rest = normalize(path.slice(1));
    return rest.startsWith('..') ? undefined : join(root, rest);
  };
}

/**
 * Starts the server on 127.0.0.1. `routes` (see above) and/or `root` (a directory, e.g. a Vite
 * `dist/`) say what is served; `isolate` adds COOP/COEP.
 * @returns the server and its base URL
 */
export function serve({ port = 0, routes = {}, root, isolate = false } = {}) {
  const resolvePath = resolver(routes, root);
  const server = createServer((req, res) => {
    const file = resolvePath(req.url ?? '/');
    let size;
    try {
      const st = file ? statSync(file) : undefined;
      size = st?.isFile() ? st.size : undefined;
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
      'Cache-Control': 'no-cache',
      ...(isolate ? ISOLATION_HEADERS : {}),
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
  return new Promise((resolveServer) => {
    server.listen(port, '127.0.0.1', () =>
      resolveServer({ server, url: `http://127.0.0.1:${server.address().port}` }),
    );
  });
}

/** `--dist DIR [--isolate] [--port N] [--mount /prefix/=DIR]...` */
export function parseServeArgs(argv) {
  const opts = { root: undefined, isolate: false, port: Number(process.env.PORT ?? 8080), routes: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--isolate') opts.isolate = true;
    else if (a === '--dist') opts.root = resolve(argv[++i]);
    else if (a === '--port') opts.port = Number(argv[++i]);
    else if (a === '--mount') {
      const [prefix, dir] = argv[++i].split('=');
      opts.routes[prefix] = resolve(dir);
    } else throw new Error(`serve.mjs: unknown argument ${a}`);
  }
  return opts;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts = parseServeArgs(process.argv.slice(2));
  const { url } = await serve(opts);
  console.log(`serving ${opts.root ?? '(routes only)'} at ${url}/`);
  console.log(
    opts.isolate
      ? 'cross-origin isolated (COOP/COEP): wasm backends may use threads'
      : 'not cross-origin isolated: wasm backends run single-threaded (add --isolate for threads)',
  );
}
