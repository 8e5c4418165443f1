import { ImageError, type DecodedImage, interleavedToRgb } from './types.js';

/**
 * Decodes an image `Blob`/`File` (PNG, JPEG, WebP, GIF, whatever the browser supports) into RGB
 * pixels, in a browser or web worker: `createImageBitmap` (no colour-space conversion, alpha not
 * premultiplied) drawn onto an `OffscreenCanvas`, then `getImageData`; alpha is dropped as PIL's
 * `convert('RGB')` does.
 *
 * Caveats: browsers decode JPEG with their own libraries, so pixels may differ by a few levels from
 * PIL/libjpeg-turbo (PNG is exact); canvases may store colours premultiplied, so a semi-transparent
 * pixel's colour can come back rounded; current browsers apply the EXIF orientation (PIL's
 * `Image.open` does not, transformers' `load_image` does). Not available in Node: use
 * `decodeImageFile` from `@qf/io/node`.
 * @throws ImageError `IMAGE_UNSUPPORTED_ENVIRONMENT` without `createImageBitmap` / `OffscreenCanvas`,
 *   `IMAGE_DECODE_FAILED` when the browser cannot decode the bytes.
 */
export async function decodeImageBlob(blob: Blob): Promise<DecodedImage> {
  const g = globalThis as {
    createImageBitmap?: typeof createImageBitmap;
    OffscreenCanvas?: typeof OffscreenCanvas;
  };
  if (typeof g.createImageBitmap !== 'function' || typeof g.OffscreenCanvas !== 'function') {
    throw new ImageError(
      'IMAGE_UNSUPPORTED_ENVIRONMENT',
      'decodeImageBlob needs createImageBitmap and OffscreenCanvas (a browser or web worker); in Node use decodeImageFile from @qf/io/node',
    );
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await g.createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (err) {
    throw new ImageError(
      'IMAGE_DECODE_FAILED',
      `cannot decode image blob (${blob.type || 'unknown type'}, ${blob.size} bytes): ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    const { width, height } = bitmap;
    const canvas = new g.OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new ImageError('IMAGE_UNSUPPORTED_ENVIRONMENT', 'OffscreenCanvas has no 2d context');
    ctx.drawImage(bitmap, 0, 0);
    const pixels = ctx.getImageData(0, 0, width, height).data; // RGBA
    return interleavedToRgb(pixels, width, height, 4);
  } finally {
    bitmap.close();
  }
}
