import { type FileHandle, open } from 'node:fs/promises';
import { SourceError } from '../errors.js';
import type { ByteSource } from '../sources/types.js';
import { checkReadRange } from '../sources/types.js';

/** Largest single `FileHandle.read` (reads above it are split). */
const CHUNK = 1 << 30;

/**
 * A {@link ByteSource} over a file: one `FileHandle`, reads at explicit offsets (never the whole
 * file). The size is taken once at open. `close()` closes the handle. A missing file throws
 * SourceError `SOURCE_NOT_FOUND`, any other open failure `SOURCE_OPEN_FAILED`.
 */
export async function fileSource(path: string): Promise<ByteSource> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as { code?: unknown }).code === 'ENOENT' ? 'SOURCE_NOT_FOUND' : 'SOURCE_OPEN_FAILED';
    throw new SourceError(code, `${path}: cannot open (${(err as Error).message})`, { cause: err });
  }
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  let closed = false;
  return {
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (closed) throw new SourceError('SOURCE_CLOSED', `${path}: read after close`);
      checkReadRange(path, size, offset, length);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const want = Math.min(CHUNK, length - done);
        const { bytesRead } = await handle.read(out, done, want, offset + done);
        if (bytesRead === 0) {
          throw new SourceError(
            'SOURCE_SHORT_READ',
            `${path}: file ended at ${offset + done} while reading ${length} bytes at ${offset} (was it truncated?)`,
          );
        }
        done += bytesRead;
      }
      return out;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}
