import { type HostTensor, QfError, TensorError, fmtShape } from '@qf/io';
import { type RawImage, type ResampleFilter, checkRawImage, resizeImage } from './resample.js';

/** CLIP / BLIP-2 normalisation mean (per RGB channel). */
export const CLIP_MEAN: readonly number[] = Object.freeze([0.48145466, 0.4578275, 0.40821073]);
/** CLIP / BLIP-2 normalisation standard deviation (per RGB channel). */
export const CLIP_STD: readonly number[] = Object.freeze([0.26862954, 0.26130258, 0.27577711]);

/** Options of {@link preprocessImage} (HF `BlipImageProcessor` semantics). */
export interface PreprocessOptions {
  /** Output side S (the vision config's `image_size`). */
  readonly imageSize: number;
  /** Per-channel mean (default {@link CLIP_MEAN}). */
  readonly mean?: readonly number[];
  /** Per-channel standard deviation (default {@link CLIP_STD}). */
  readonly std?: readonly number[];
  /** Resampling filter (default `bicubic`, BlipImageProcessor's `resample=3`). */
  readonly resample?: ResampleFilter;
  /** Resize to S x S (default true). With false the image keeps its size, as `do_resize=False`. */
  readonly doResize?: boolean;
  /** Multiplier applied to the 8-bit values before normalising (default 1/255). */
  readonly rescaleFactor?: number;
}

/**
 * PIL's `convert('RGB')` for 8-bit images: grey (1 channel) is repeated into R, G and B; alpha
 * (grey + alpha, RGBA) is dropped without compositing on any background; RGB is returned as is.
 */
export function toRgb(image: RawImage): RawImage {
  checkRawImage(image);
  const { width, height, channels: ch, data } = image;
  if (ch === 3) return image;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (ch <= 2) {
      const g = data[i * ch] as number;
      out[i * 3] = g;
      out[i * 3 + 1] = g;
      out[i * 3 + 2] = g;
    } else {
      out[i * 3] = data[i * 4] as number;
      out[i * 3 + 1] = data[i * 4 + 1] as number;
      out[i * 3 + 2] = data[i * 4 + 2] as number;
    }
  }
  return { data: out, width, height, channels: 3 };
}

function checkOptions(o: PreprocessOptions): { mean: readonly number[]; std: readonly number[] } {
  if (!Number.isInteger(o.imageSize) || o.imageSize < 1)
    throw new QfError('PREPROCESS_OPTIONS', `imageSize must be a positive integer, got ${o.imageSize}`);
  const mean = o.mean ?? CLIP_MEAN;
  const std = o.std ?? CLIP_STD;
  if (
    mean.length !== 3 ||
    std.length !== 3 ||
    !mean.every(Number.isFinite) ||
    !std.every((s) => Number.isFinite(s) && s !== 0)
  )
    throw new QfError(
      'PREPROCESS_OPTIONS',
      `mean and std need 3 finite values (std non-zero), got [${mean}] and [${std}]`,
    );
  return { mean, std };
}

/** Rescale + normalise one RGB image into `out` at `offset`, HWC -> CHW, with numpy's float32 rounding. */
function normalizeInto(rgb: RawImage, o: PreprocessOptions, out: Float32Array, offset: number): void {
  const { mean, std } = checkOptions(o);
  const scale = o.rescaleFactor ?? 1 / 255;
  const plane = rgb.width * rgb.height;
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c] as number);
    const s = Math.fround(std[c] as number);
    for (let i = 0; i < plane; i++) {
      // HF: float32(float64(x) * scale), then (x - mean) / std in float32.
      const x = Math.fround((rgb.data[i * 3 + c] as number) * scale);
      out[offset + c * plane + i] = Math.fround(Math.fround(x - m) / s);
    }
  }
}

function resized(image: RawImage, o: PreprocessOptions): RawImage {
  const rgb = toRgb(image);
  if (o.doResize === false) return rgb;
  return resizeImage(rgb, o.imageSize, o.imageSize, o.resample ?? 'bicubic');
}

/**
 * BLIP-2 image preprocessing (HF `BlipImageProcessor`): convert to RGB, resize to S x S with PIL's
 * bicubic resampling, multiply by 1/255, normalise with the CLIP mean/std, HWC -> CHW.
 * @param image 8-bit pixels (see `decodeImageFile` / `decodeImageBlob` in @qf/io)
 * @returns float32 [3, S, S] (or [3, H, W] with `doResize: false`)
 */
export function preprocessImage(image: RawImage, options: PreprocessOptions): HostTensor<'F32'> {
  checkOptions(options);
  const rgb = resized(image, options);
  const data = new Float32Array(3 * rgb.width * rgb.height);
  normalizeInto(rgb, options, data, 0);
  return { dtype: 'F32', shape: [3, rgb.height, rgb.width], data };
}

/**
 * {@link preprocessImage} for a batch: the vision tower's `pixel_values` [B, 3, S, S].
 * @throws TensorError `TENSOR_SHAPE` naming `images[i]` when, with `doResize: false`, sizes differ.
 */
export function preprocessImages(images: readonly RawImage[], options: PreprocessOptions): HostTensor<'F32'> {
  checkOptions(options);
  if (images.length === 0)
    throw new TensorError('TENSOR_SHAPE', 'images', 'need at least one image', '>= 1', '0');
  const rgbs = images.map((im, i) => {
    checkRawImage(im, `images[${i}]`);
    return resized(im, options);
  });
  const first = rgbs[0] as RawImage;
  const plane = 3 * first.width * first.height;
  const data = new Float32Array(images.length * plane);
  rgbs.forEach((rgb, i) => {
    if (rgb.width !== first.width || rgb.height !== first.height) {
      throw new TensorError(
        'TENSOR_SHAPE',
        `images[${i}]`,
        'images of one batch must have the same size',
        fmtShape([first.height, first.width]),
        fmtShape([rgb.height, rgb.width]),
      );
    }
    normalizeInto(rgb, options, data, i * plane);
  });
  return { dtype: 'F32', shape: [images.length, 3, first.height, first.width], data };
}
