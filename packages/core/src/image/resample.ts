import { QfError, TensorError, fmtShape } from '@qf/io';

/**
 * An 8-bit image, rows top to bottom, pixels interleaved (HWC): `data[(y * width + x) * channels + c]`.
 * `channels` is 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
 */
export interface RawImage {
  readonly data: Uint8Array | Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** Resampling filters of {@link resizeImage} (PIL `Image.Resampling.BICUBIC` / `BILINEAR`). */
export type ResampleFilter = 'bicubic' | 'bilinear';

interface Filter {
  readonly support: number;
  readonly weight: (x: number) => number;
}

/** Keys' cubic convolution kernel with a = -0.5 (PIL's `bicubic_filter`). */
function bicubic(t: number): number {
  const a = -0.5;
  const x = t < 0 ? -t : t;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** The triangle kernel (PIL's `bilinear_filter`). */
function bilinear(t: number): number {
  const x = t < 0 ? -t : t;
  return x < 1 ? 1 - x : 0;
}

const FILTERS: Readonly<Record<ResampleFilter, Filter>> = {
  bicubic: { support: 2, weight: bicubic },
  bilinear: { support: 1, weight: bilinear },
};

/** Fixed-point bits of the 8-bit coefficients: 32 - 8 (result) - 2 (overflow headroom). */
export const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Per-output-pixel windows and fixed-point weights of one axis. */
interface Coefficients {
  /** Maximum window length. */
  readonly ksize: number;
  /** `[first input index, window length]` per output pixel. */
  readonly bounds: Int32Array;
  /** `ksize` fixed-point weights per output pixel (PRECISION_BITS fractional bits). */
  readonly weights: Int32Array;
}

/**
 * PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole axis (box [0, inSize]): output
 * pixel i is centred at `(i + 0.5) * scale` in input coordinates, scale = in / out; when shrinking
 * the kernel is stretched by the scale (antialiasing); weights are normalised to sum 1 and then
 * rounded half away from zero to fixed point.
 */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      k[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? (k[x] as number) / sum : (k[x] as number);
      weights[i * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[i * 2] = xmin;
    bounds[i * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

/** Fixed-point accumulator -> uint8: arithmetic shift by PRECISION_BITS, clamped to 0..255. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass over rows `rowStart .. rowStart + rows - 1` of `src`. */
function resampleRows(src: RawImage, outWidth: number, rowStart: number, rows: number, c: Coefficients) {
  const { width, channels: ch, data } = src;
  const out = new Uint8Array(outWidth * rows * ch);
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowStart) * width;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = c.bounds[xx * 2] as number;
      const n = c.bounds[xx * 2 + 1] as number;
      const k0 = xx * c.ksize;
      for (let b = 0; b < ch; b++) {
        let acc = HALF;
        for (let x = 0; x < n; x++)
          acc += (data[(rowIn + xmin + x) * ch + b] as number) * (c.weights[k0 + x] as number);
        out[(y * outWidth + xx) * ch + b] = clip8(acc);
      }
    }
  }
  return { data: out, width: outWidth, height: rows, channels: ch };
}

/** Vertical pass: row `yy` of the output mixes rows `bounds` (already relative to `src`). */
function resampleColumns(src: RawImage, outHeight: number, c: Coefficients): RawImage {
  const { width, channels: ch, data } = src;
  const out = new Uint8Array(width * outHeight * ch);
  const rowLen = width * ch;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = c.bounds[yy * 2] as number;
    const n = c.bounds[yy * 2 + 1] as number;
    const k0 = yy * c.ksize;
    for (let i = 0; i < rowLen; i++) {
      let acc = HALF;
      for (let y = 0; y < n; y++)
        acc += (data[(ymin + y) * rowLen + i] as number) * (c.weights[k0 + y] as number);
      out[yy * rowLen + i] = clip8(acc);
    }
  }
  return { data: out, width, height: outHeight, channels: ch };
}

/** Checks that `image` is a well-formed {@link RawImage}; `name` is used in errors. */
export function checkRawImage(image: RawImage, name = 'image'): void {
  const { width, height, channels, data } = image;
  const dims = [height, width, channels];
  if (!dims.every((d) => Number.isInteger(d) && d > 0) || channels > 4) {
    throw new TensorError(
      'TENSOR_SHAPE',
      name,
      'bad image size or channel count',
      '[H >= 1, W >= 1, 1..4]',
      fmtShape(dims),
    );
  }
  if (!(data instanceof Uint8Array) && !(data instanceof Uint8ClampedArray)) {
    throw new TensorError(
      'TENSOR_DTYPE',
      name,
      'pixel data must be 8-bit',
      'Uint8Array',
      Object.prototype.toString.call(data),
    );
  }
  if (data.length !== width * height * channels) {
    throw new TensorError(
      'TENSOR_SHAPE',
      name,
      'data length does not match height x width x channels',
      String(width * height * channels),
      String(data.length),
    );
  }
}

/**
 * Resizes an 8-bit image exactly as Pillow's `Image.resize(size, BICUBIC | BILINEAR)` does for 8-bit
 * modes (`ImagingResample` in libImaging/Resample.c): separable, horizontal pass first, then
 * vertical; kernels stretched by the scale when shrinking (antialias); fixed-point weights with
 * PRECISION_BITS = 22, rounding and clamping to 0..255 after each pass. Same size returns a copy.
 * Channels are resampled independently (PIL resizes LA/RGBA with premultiplied alpha instead; BLIP
 * preprocessing converts to RGB before resizing, so it never takes that path).
 */
export function resizeImage(
  image: RawImage,
  width: number,
  height: number,
  filter: ResampleFilter = 'bicubic',
): RawImage {
  checkRawImage(image);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new QfError('IMAGE_RESIZE', `resize target must be positive integers, got ${width} x ${height}`);
  }
  const f = FILTERS[filter];
  if (!f)
    throw new QfError('IMAGE_RESIZE', `unknown resample filter "${String(filter)}" (bicubic | bilinear)`);
  let out: RawImage = image;
  const vertical = coefficients(image.height, height, f);
  if (width !== image.width) {
    // Only the input rows that the vertical pass reads (PIL's ybox_first .. ybox_last).
    const first = vertical.bounds[0] as number;
    const last =
      (vertical.bounds[(height - 1) * 2] as number) + (vertical.bounds[(height - 1) * 2 + 1] as number);
    for (let i = 0; i < height; i++) vertical.bounds[i * 2] = (vertical.bounds[i * 2] as number) - first;
    out = resampleRows(image, width, first, last - first, coefficients(image.width, width, f));
  }
  if (height !== image.height) out = resampleColumns(out, height, vertical);
  return out === image ? { ...image, data: image.data.slice() } : out;
}
