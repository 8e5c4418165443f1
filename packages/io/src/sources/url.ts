import { SourceError } from '../errors.js';
import type { ByteSource } from './types.js';
import { checkReadLength, checkReadRange } from './types.js';

/** The part of a fetch `Response` that {@link urlSource} uses. */
export interface FetchResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
  readonly body?: { cancel(): Promise<void> } | null;
}

/** The part of `fetch` that {@link urlSource} uses; inject a fake in tests. */
export type FetchLike = (
  url: string,
  init: { method: 'GET' | 'HEAD'; headers: Record<string, string> },
) => Promise<FetchResponseLike>;

/** Options of {@link urlSource}. */
export interface UrlSourceOptions {
  /** The fetch implementation (default: `globalThis.fetch`). */
  fetch?: FetchLike;
  /** Extra request headers (e.g. `Authorization`). */
  headers?: Record<string, string>;
  /** The size in bytes, when known; skips the size request. */
  size?: number;
}

const CONTENT_RANGE = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i;

function parseContentRange(value: string | null): { start: number; end: number; total?: number } | undefined {
  const m = value === null ? null : CONTENT_RANGE.exec(value.trim());
  if (!m) return undefined;
  const total = m[3] === '*' ? undefined : Number(m[3]);
  return { start: Number(m[1]), end: Number(m[2]), ...(total === undefined ? {} : { total }) };
}

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

async function discard(res: FetchResponseLike): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // nothing to release
  }
}

async function request(
  fetchFn: FetchLike,
  url: string,
  method: 'GET' | 'HEAD',
  headers: Record<string, string>,
): Promise<FetchResponseLike> {
  try {
    return await fetchFn(url, { method, headers });
  } catch (err) {
    throw new SourceError('SOURCE_HTTP', `${method} ${url} failed: ${(err as Error)?.message ?? err}`, {
      cause: err,
    });
  }
}

async function probeSize(fetchFn: FetchLike, url: string, headers: Record<string, string>): Promise<number> {
  const head = await request(fetchFn, url, 'HEAD', headers);
  if (head.ok) {
    const encoded = head.headers.get('content-encoding');
    const n = parseLength(head.headers.get('content-length'));
    if (n !== undefined && (encoded === null || encoded === 'identity')) return n;
  }
  await discard(head);
  const res = await request(fetchFn, url, 'GET', { ...headers, Range: 'bytes=0-0' });
  await discard(res);
  if (res.status === 206) {
    const total = parseContentRange(res.headers.get('content-range'))?.total;
    if (total !== undefined && Number.isSafeInteger(total)) return total;
  } else if (res.ok) {
    throw new SourceError(
      'SOURCE_NO_RANGE_SUPPORT',
      `${url}: the server ignored a Range request (status ${res.status}); lazy reads need HTTP range support`,
    );
  } else {
    throw new SourceError('SOURCE_HTTP', `${url}: HTTP status ${res.status} while probing the size`);
  }
  throw new SourceError(
    'SOURCE_NO_SIZE',
    `${url}: cannot tell the size (no Content-Length on HEAD, no total in Content-Range)`,
  );
}

/**
 * A {@link ByteSource} over a URL: the size comes from a HEAD request's Content-Length (or the total of
 * a `Range: bytes=0-0` response's Content-Range), each read is one GET with an HTTP Range header.
 * Servers that ignore Range requests are rejected with SourceError `SOURCE_NO_RANGE_SUPPORT` rather
 * than downloading the whole file for every read.
 */
export async function urlSource(url: string, options: UrlSourceOptions = {}): Promise<ByteSource> {
  const fetchFn = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
  if (fetchFn === undefined) throw new SourceError('SOURCE_HTTP', 'no fetch implementation available');
  const headers = { ...(options.headers ?? {}) };
  const size = options.size ?? (await probeSize(fetchFn, url, headers));
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new SourceError('SOURCE_NO_SIZE', `${url}: invalid size ${size}`);
  }
  return {
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkReadRange(url, size, offset, length);
      if (length === 0) return new Uint8Array(0);
      const last = offset + length - 1;
      const res = await request(fetchFn, url, 'GET', { ...headers, Range: `bytes=${offset}-${last}` });
      if (res.status === 200 && !(offset === 0 && length === size)) {
        await discard(res);
        throw new SourceError(
          'SOURCE_NO_RANGE_SUPPORT',
          `${url}: the server ignored the Range request bytes=${offset}-${last} (status 200)`,
        );
      }
      if (res.status !== 200 && res.status !== 206) {
        await discard(res);
        throw new SourceError('SOURCE_HTTP', `${url}: HTTP status ${res.status} for bytes=${offset}-${last}`);
      }
      if (res.status === 206) {
        const range = parseContentRange(res.headers.get('content-range'));
        if (range !== undefined && (range.start !== offset || range.end !== last)) {
          await discard(res);
          throw new SourceError(
            'SOURCE_HTTP',
            `${url}: asked for bytes ${offset}-${last}, the server sent ${range.start}-${range.end}`,
          );
        }
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      checkReadLength(url, offset, length, bytes.length);
      return bytes;
    },
  };
}
