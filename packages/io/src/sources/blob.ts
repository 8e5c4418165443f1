import type { ByteSource } from './types.js';
import { checkReadLength, checkReadRange } from './types.js';

/**
 * A {@link ByteSource} over a Blob or File (browsers, Node >= 18): each read is
 * `blob.slice(offset, offset + length).arrayBuffer()`, so only the requested bytes are loaded.
 */
export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkReadRange('blob', blob.size, offset, length);
      if (length === 0) return new Uint8Array(0);
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      checkReadLength('blob', offset, length, bytes.length);
      return bytes;
    },
  };
}
