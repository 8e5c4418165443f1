import { QfError } from '../errors.js';

/**
 * Decoding an image failed. Codes: `IMAGE_DECODE_FAILED` (not an image, a truncated or corrupt
 * file, an unsupported format), `IMAGE_DECODER_UNAVAILABLE` (Node: the `sharp` package cannot be
 * loaded), `IMAGE_UNSUPPORTED_ENVIRONMENT` (browser: no `createImageBitmap` / `OffscreenCanvas`).
 * A missing file is a SourceError `SOURCE_NOT_FOUND`, as for checkpoints.
 */
export class ImageError extends QfError {}

/**
 * A decoded 8-bit RGB image, rows top to bottom, pixels interleaved: `data[(y * width + x) * 3 + c]`.
 * Feed it to `preprocessImage` in @qf/core.
 */
export interface DecodedImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 3;
}

/**
 * Interleaved 8-bit pixels with 1..4 channels -> RGB, as PIL's `convert('RGB')`: grey is repeated,
 * alpha is dropped (not composited on any background). Three channels are returned as they are.
 */
export function interleavedToRgb(
  data: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: number,
): DecodedImage {
  const n = width * height;
  if (channels < 1 || channels > 4 || data.length !== n * channels) {
    throw new ImageError(
      'IMAGE_DECODE_FAILED',
      `decoder returned ${data.length} bytes for ${width}x${height} with ${channels} channel(s)`,
    );
  }
  if (channels === 3) {
    const rgb = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.length);
    return { data: rgb, width, height, channels: 3 };
  }
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const src = i * channels;
    const grey = channels <= 2;
    out[i * 3] = data[src] as number;
    out[i * 3 + 1] = data[grey ? src : src + 1] as number;
    out[i * 3 + 2] = data[grey ? src : src + 2] as number;
  }
  return { data: out, width, height, channels: 3 };
}
