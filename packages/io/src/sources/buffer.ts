import type { ByteSource } from './types.js';
import { checkReadRange } from './types.js';

/**
 * A {@link ByteSource} over bytes already in memory. Reads are zero-copy views of `bytes`.
 */
export function bufferSource(bytes: ArrayBuffer | ArrayBufferView): ByteSource {
  const view =
    bytes instanceof ArrayBuffer
      ? new Uint8Array(bytes)
      : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    size: view.byteLength,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkReadRange('buffer', view.byteLength, offset, length);
      return view.subarray(offset, offset + length);
    },
  };
}
