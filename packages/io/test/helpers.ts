import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FetchLike, type FetchResponseLike, QfError } from '../src/index.js';

/** `../shared/golden` relative to the repository root. */
export const GOLDEN_DIR = fileURLToPath(new URL('../../../../shared/golden/', import.meta.url));
export const HAVE_GOLDEN = existsSync(GOLDEN_DIR);

/** Builds raw safetensors bytes from a header (object or literal JSON text) and a data section. */
export function rawSafetensors(
  header: unknown,
  data: Uint8Array | number = 0,
  lengthOverride?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** Expects `p` to reject with a QfError of `code`; returns the error. */
export async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<QfError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof QfError)) throw new Error(`expected QfError ${code}, got ${String(err)}`);
    if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  throw new Error(`expected rejection with ${code}, but it resolved`);
}

/** Expects `fn` to throw a QfError of `code`; returns the error. */
export function throwsWithCode(fn: () => unknown, code: string): QfError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof QfError)) throw new Error(`expected QfError ${code}, got ${String(err)}`);
    if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  throw new Error(`expected a throw with ${code}`);
}

/** Runs `fn` with a fresh temp directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'qf-io-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function response(
  status: number,
  body: Uint8Array,
  headers: Record<string, string> = {},
): FetchResponseLike {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (name: string) => h.get(name.toLowerCase()) ?? null },
    arrayBuffer: async () => body.slice().buffer,
    body: { cancel: async () => undefined },
  };
}

export interface FakeServer {
  fetch: FetchLike;
  log: string[];
}

/** A fake HTTP server over `files` that honours single Range requests (like a CDN). */
export function fakeServer(
  files: Record<string, Uint8Array>,
  opts: { head?: boolean; ranges?: boolean } = {},
): FakeServer {
  const log: string[] = [];
  const fetch: FetchLike = async (url, init) => {
    const range = init.headers.Range;
    log.push(`${init.method} ${url}${range ? ` ${range}` : ''}`);
    const body = files[url];
    if (body === undefined) return response(404, new Uint8Array(0));
    if (init.method === 'HEAD') {
      return opts.head === false
        ? response(405, new Uint8Array(0))
        : response(200, new Uint8Array(0), { 'Content-Length': String(body.length) });
    }
    const m = range === undefined ? null : /^bytes=(\d+)-(\d+)$/.exec(range);
    if (m && opts.ranges !== false) {
      const start = Number(m[1]);
      const end = Math.min(Number(m[2]), body.length - 1);
      if (start >= body.length) return response(416, new Uint8Array(0));
      return response(206, body.subarray(start, end + 1), {
        'Content-Range': `bytes ${start}-${end}/${body.length}`,
      });
    }
    return response(200, body, { 'Content-Length': String(body.length) });
  };
  return { fetch, log };
}
