/**
 * Little-endian byte <-> typed array conversion. Safetensors stores elements little-endian; on a
 * little-endian host (every common one) these are plain copies/views, on a big-endian host the bytes
 * of each element are swapped.
 */
import { DTYPE_BYTES, type DType, type DTypeArrays, typedArrayView } from './dtypes.js';

/** True when the host stores typed array elements little-endian. */
export const HOST_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapInPlace(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * Copies little-endian element bytes into a new, properly aligned typed array of `dtype`. The input
 * may sit at any byte offset; `bytes.length` must be a multiple of the element size.
 */
export function typedArrayFromBytes<D extends DType>(dtype: D, bytes: Uint8Array): DTypeArrays[D] {
  const width = DTYPE_BYTES[dtype];
  const buffer = new ArrayBuffer(bytes.length);
  const copy = new Uint8Array(buffer);
  copy.set(bytes);
  if (!HOST_LITTLE_ENDIAN) swapInPlace(copy, width);
  return typedArrayView(dtype, buffer, 0, bytes.length / width);
}

/**
 * The little-endian bytes of a typed array: a view without copying on little-endian hosts, a swapped
 * copy otherwise.
 */
export function typedArrayToBytes(dtype: DType, data: ArrayBufferView): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN) return view;
  const copy = view.slice();
  swapInPlace(copy, DTYPE_BYTES[dtype]);
  return copy;
}
