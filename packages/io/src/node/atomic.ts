import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The temp-file name used next to `path` while it is being written. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** fsyncs a directory (so a rename inside it is durable); a no-op where unsupported (Windows). */
export async function fsyncDir(dir: string): Promise<void> {
  let h: FileHandle | undefined;
  try {
    h = await open(dir, 'r');
    await h.sync();
  } catch {
    // Not supported on every platform (e.g. Windows); the rename itself is still atomic.
  } finally {
    await h?.close().catch(() => undefined);
  }
}

/**
 * Writes a file atomically: `write` fills a fresh temp file in the same directory, which is then
 * fsynced and renamed over `path` (and the directory fsynced). If anything fails the temp file is
 * removed and `path` keeps its old content (or stays absent): a half-written file is never visible.
 */
export async function atomicWriteFileWith(
  path: string,
  write: (handle: FileHandle) => Promise<void>,
): Promise<void> {
  const tmp = tempPathFor(path);
  const handle = await open(tmp, 'wx');
  let ok = false;
  try {
    await write(handle);
    await handle.sync();
    await handle.close();
    await rename(tmp, path);
    ok = true;
  } finally {
    if (!ok) {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }
  await fsyncDir(dirname(path));
}

/** Writes bytes or UTF-8 text to `path` atomically (see {@link atomicWriteFileWith}). */
export async function atomicWriteFile(path: string, data: Uint8Array | string): Promise<void> {
  await atomicWriteFileWith(path, async (handle) => {
    await writeAll(handle, typeof data === 'string' ? new TextEncoder().encode(data) : data);
  });
}

/** Writes every byte of `bytes` at the handle's current position (loops over short writes). */
export async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.length - done, 1 << 30));
    done += bytesWritten;
  }
}
