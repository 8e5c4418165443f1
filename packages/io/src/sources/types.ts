import { SourceError } from '../errors.js';

/**
 * Random-access bytes: a file, a Blob, an in-memory buffer or a URL read with HTTP Range requests.
 * `read` returns exactly `length` bytes starting at `offset`, or rejects; the returned array may be a
 * view into memory the source owns, so copy it before mutating.
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Reads `length` bytes at `offset`; rejects with SourceError when the range is outside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying resource (file handle...). Optional. */
  close?(): Promise<void>;
}

/**
 * Throws SourceError `SOURCE_OUT_OF_RANGE` unless `offset` and `length` are non-negative safe
 * integers with `offset + length <= size`. Every source calls it before touching its backing store.
 */
export function checkReadRange(what: string, size: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > size
  ) {
    throw new SourceError(
      'SOURCE_OUT_OF_RANGE',
      `${what}: read of ${length} bytes at offset ${offset} is outside the source (size ${size})`,
    );
  }
}

/**
 * Throws SourceError `SOURCE_SHORT_READ` when a read returned fewer (or more) bytes than asked.
 */
export function checkReadLength(what: string, offset: number, expected: number, actual: number): void {
  if (actual !== expected) {
    throw new SourceError(
      'SOURCE_SHORT_READ',
      `${what}: read at offset ${offset} returned ${actual} bytes, expected ${expected}`,
    );
  }
}
