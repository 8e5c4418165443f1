import { readFile } from 'node:fs/promises';
import { SourceError } from '../errors.js';
import { type DecodedImage, ImageError, interleavedToRgb } from '../image/types.js';

type SharpFactory = typeof import('sharp').default;
let sharpPromise: Promise<SharpFactory> | undefined;

/** Loads `sharp` on first use, so importing `@qf/io/node` never loads the native library. */
function loadSharp(): Promise<SharpFactory> {
  sharpPromise ??= import('sharp').then(
    (m) => (m as { default?: SharpFactory }).default ?? (m as unknown as SharpFactory),
    (err: unknown) => {
      sharpPromise = undefined;
      throw new ImageError(
        'IMAGE_DECODER_UNAVAILABLE',
        `the image decoder (npm package "sharp") cannot be loaded: ${(err as Error).message}`,
        { cause: err },
      );
    },
  );
  return sharpPromise;
}

/** Options of {@link decodeImage}. */
export interface DecodeImageOptions {
  /**
   * Rotate/flip by the EXIF orientation tag (default false: pixels as stored, like PIL's
   * `Image.open`; transformers' `load_image` applies it, as `true` does).
   */
  readonly autoOrient?: boolean;
  /** Used in error messages (default `image`). */
  readonly name?: string;
}

/**
 * Decodes image bytes (JPEG, PNG, WebP, GIF first frame, TIFF, AVIF...) into 8-bit RGB with `sharp`
 * (libvips; libpng and libjpeg-turbo-based mozjpeg). Like PIL's `Image.open(...).convert('RGB')`:
 * embedded ICC profiles are ignored, grey is repeated into R, G and B, alpha is dropped without
 * compositing, 16-bit images are reduced to 8 bits.
 * @throws ImageError `IMAGE_DECODE_FAILED` for bytes that are not a supported image,
 *   `IMAGE_DECODER_UNAVAILABLE` when `sharp` cannot be loaded.
 */
export async function decodeImage(
  bytes: Uint8Array,
  options: DecodeImageOptions = {},
): Promise<DecodedImage> {
  const sharp = await loadSharp();
  const name = options.name ?? 'image';
  let result: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    let pipeline = sharp(bytes, { ignoreIcc: true, failOn: 'error' });
    if (options.autoOrient) pipeline = pipeline.autoOrient();
    result = await pipeline
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ImageError('IMAGE_DECODE_FAILED', `${name}: cannot decode (${(err as Error).message})`, {
      cause: err,
    });
  }
  const { data, info } = result;
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return interleavedToRgb(pixels, info.width, info.height, info.channels);
}

/**
 * Reads and decodes an image file (see {@link decodeImage}).
 * @throws SourceError `SOURCE_NOT_FOUND` for a missing file (`SOURCE_OPEN_FAILED` for other read
 *   errors), ImageError `IMAGE_DECODE_FAILED` for a file that is not a supported image.
 */
export async function decodeImageFile(
  path: string,
  options: Omit<DecodeImageOptions, 'name'> = {},
): Promise<DecodedImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code === 'ENOENT' ? 'SOURCE_NOT_FOUND' : 'SOURCE_OPEN_FAILED';
    throw new SourceError(code, `${path}: cannot read (${(err as Error).message})`, { cause: err });
  }
  return decodeImage(bytes, { ...options, name: path });
}
