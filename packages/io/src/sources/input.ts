import { bufferSource } from './buffer.js';
import { blobSource } from './blob.js';
import type { ByteSource } from './types.js';

/** Anything {@link toByteSource} turns into a {@link ByteSource}. */
export type ByteSourceInput = ByteSource | ArrayBuffer | ArrayBufferView | Blob;

/** Wraps an ArrayBuffer, typed array or Blob in a ByteSource; passes a ByteSource through. */
export function toByteSource(input: ByteSourceInput): ByteSource {
  if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) return bufferSource(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return blobSource(input);
  return input as ByteSource;
}
