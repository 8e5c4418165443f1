import { QfError, TensorError } from '@qf/io';
import { describe, expect, it } from 'vitest';
import {
  CLIP_MEAN,
  CLIP_STD,
  PRECISION_BITS,
  type RawImage,
  type ResampleFilter,
  preprocessImage,
  preprocessImages,
  resizeImage,
  toRgb,
} from '../src/index.js';

/** A deterministic image whose value at (x, y, c) is `f(x, y, c)` (clamped to 0..255). */
function image(
  width: number,
  height: number,
  channels: number,
  f: (x: number, y: number, c: number) => number,
): RawImage {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = f(x, y, c);
  return { data, width, height, channels };
}

/** A seeded pseudo-random image (xorshift), so tests never depend on Math.random. */
function noise(width: number, height: number, channels: number, seed: number): RawImage {
  let s = seed >>> 0 || 1;
  return image(width, height, channels, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % 256;
  });
}

const px = (im: RawImage) => [...im.data];
const extent = (d: ArrayLike<number>): [number, number] => {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < d.length; i++) {
    lo = Math.min(lo, d[i] as number);
    hi = Math.max(hi, d[i] as number);
  }
  return [lo, hi];
};
const FILTERS: ResampleFilter[] = ['bicubic', 'bilinear'];
const SIZES: [number, number, number, number][] = [
  [32, 32, 16, 16], // 2x down
  [37, 23, 224, 224], // up, non-square in
  [640, 480, 224, 224], // big down, non-integer factor
  [50, 50, 49, 51], // almost the same size
  [9, 1, 3, 5], // one row
];

describe('resizeImage (Pillow ImagingResample, 8-bit)', () => {
  it('uses 22 fractional bits (32 - 8 - 2), as Pillow does', () => {
    expect(PRECISION_BITS).toBe(22);
  });

  it('keeps a constant image constant, for every filter, scale and value', () => {
    // Each output is (2^21 + v * sum(k)) >> 22 with sum(k) = 2^22 up to a few units of rounding,
    // so v * (sum(k) - 2^22) / 2^22 is far below the 0.5 margin the 2^21 offset gives.
    for (const filter of FILTERS)
      for (const [w, h, ow, oh] of SIZES)
        for (const v of [0, 1, 128, 254, 255]) {
          const out = resizeImage(
            image(w, h, 3, () => v),
            ow,
            oh,
            filter,
          );
          expect([out.width, out.height, out.channels]).toEqual([ow, oh, 3]);
          expect(
            out.data.every((x) => x === v),
            `${filter} ${w}x${h}->${ow}x${oh} of ${v}`,
          ).toBe(true);
        }
  });

  it('returns an equal copy when the size does not change (PIL copies)', () => {
    const im = noise(13, 7, 3, 1);
    const out = resizeImage(im, 13, 7);
    expect(px(out)).toEqual(px(im));
    expect(out.data).not.toBe(im.data);
  });

  it('downscales 2x by rounding half up, one pass at a time (derived by hand)', () => {
    // 2 -> 1 pixels: scale 2 stretches the bicubic support to 4, so the window is both inputs,
    // centred at 1.0: taps at (0 - 1 + 0.5) / 2 = -0.25 and +0.25, equal weights 1/2 after
    // normalising, 2^21 each in fixed point. Output = (2^21 + 2^21 (a + b)) >> 22 = floor((a + b + 1) / 2).
    for (const [a, b] of [
      [10, 20],
      [10, 21],
      [0, 255],
      [254, 255],
    ] as const) {
      const out = resizeImage(
        image(2, 1, 1, (x) => (x ? b : a)),
        1,
        1,
      );
      expect(px(out)).toEqual([Math.floor((a + b + 1) / 2)]);
    }
    // 2x2 -> 1x1 of [[0, 255], [255, 255]]: the horizontal pass rounds each row first,
    // rows -> floor(256 / 2) = 128 and 255; then the vertical pass gives floor((128 + 255 + 1) / 2) = 192
    // (not the rounded mean 191 of the four pixels).
    expect(
      px(
        resizeImage(
          image(2, 2, 1, (x, y) => (x || y ? 255 : 0)),
          1,
          1,
        ),
      ),
    ).toEqual([192]);
  });

  it('upscales with the a = -0.5 cubic, fixed-point weights and clamping (derived by hand)', () => {
    // 2 -> 4 pixels, scale 1/2 (support stays 2). Output 0 is centred at 0.25, its window is both
    // inputs, taps at 0.25 and 1.25: w(0.25) = 1 - 2.125/16 = 111/128, w(1.25) = -9/128; normalised
    // 37/34 and -3/34. Output 1 (centre 0.75) has taps -0.25, 0.75: 111/128, 29/128 -> 111/140, 29/140.
    // Outputs 2 and 3 mirror 1 and 0. In fixed point: round(37/34 * 2^22) = 4564390,
    // -round(3/34 * 2^22) = -370086, round(111/140 * 2^22) = 3325484, round(29/140 * 2^22) = 868820.
    // [100, 200]: (2^21 + 4564390 * 100 - 370086 * 200) >> 22 = 91; (2^21 + 3325484 * 100 + 868820 * 200) >> 22 = 121;
    // and mirrored 179, 209.
    expect(
      px(
        resizeImage(
          image(2, 1, 1, (x) => (x ? 200 : 100)),
          4,
          1,
        ),
      ),
    ).toEqual([91, 121, 179, 209]);
    // [255, 0]: output 0 is 255 * 37/34 = 277.5 before clamping -> 255; output 3 is -22.5 -> 0.
    const overshoot = px(
      resizeImage(
        image(2, 1, 1, (x) => (x ? 0 : 255)),
        4,
        1,
      ),
    );
    expect(overshoot[0]).toBe(255);
    expect(overshoot[3]).toBe(0);
  });

  it('matches Pillow 9.4.0 on a recorded ramp (non-integer down- and upscale)', () => {
    // Recorded with Debian python3-pil 9.4.0 (no PIL in CI; rerun this to check):
    //   im = Image.frombytes('L', (6, 4), bytes(x * 40 + y * 10 for y in range(4) for x in range(6)))
    //   list(im.resize((4, 3), Image.BICUBIC).tobytes()); list(im.resize((9, 5), Image.BICUBIC).tobytes())
    const ramp = image(6, 4, 1, (x, y) => x * 40 + y * 10);
    expect(px(resizeImage(ramp, 4, 3))).toEqual([14, 70, 134, 190, 27, 83, 147, 203, 40, 96, 160, 216]);
    expect(px(resizeImage(ramp, 9, 5))).toEqual([
      0, 16, 47, 73, 100, 127, 153, 184, 203, 4, 22, 53, 79, 106, 133, 159, 190, 209, 12, 31, 62, 88, 115,
      142, 168, 199, 218, 21, 40, 71, 97, 124, 151, 177, 208, 227, 27, 46, 77, 103, 130, 157, 183, 214, 233,
    ]);
  });

  it('antialiases when shrinking: thin stripes shrunk 8x average out, they do not alias', () => {
    // One column in four is 255 (mean 63.75). The kernel is stretched 8x (33 taps), so an output
    // column averages ~8 stripes; an unstretched 4-tap kernel centred at 4 + 8i would land next to
    // a stripe every time (~145). The first and last columns see a window cut by the border.
    const out = resizeImage(
      image(64, 8, 1, (x) => (x % 4 === 0 ? 255 : 0)),
      8,
      8,
    );
    for (let y = 0; y < 8; y++)
      for (let x = 1; x < 7; x++)
        expect(Math.abs((out.data[y * 8 + x] as number) - 63.75)).toBeLessThanOrEqual(2);
  });

  it('keeps bilinear outputs within the input range (non-negative weights)', () => {
    for (const [w, h, ow, oh] of SIZES) {
      const im = image(w, h, 1, (x, y) => 60 + ((x * 7 + y * 3) % 101));
      const out = resizeImage(im, ow, oh, 'bilinear');
      const [lo, hi] = extent(im.data);
      const [outLo, outHi] = extent(out.data);
      expect(outLo).toBeGreaterThanOrEqual(lo);
      expect(outHi).toBeLessThanOrEqual(hi);
    }
  });

  it('resizes non-square images separably: a vertical ramp stays a vertical ramp', () => {
    // Rows are constant, so the horizontal pass leaves them unchanged (see the constant test) and
    // every output column equals the 1-D vertical resize of one input column.
    const rows = image(31, 17, 1, (_, y) => y * 15);
    const column = image(1, 17, 1, (_, y) => y * 15);
    for (const [ow, oh] of [
      [8, 40],
      [45, 9],
    ] as const) {
      const out = resizeImage(rows, ow, oh);
      const col = resizeImage(column, 1, oh);
      expect([out.width, out.height]).toEqual([ow, oh]);
      for (let y = 0; y < oh; y++)
        for (let x = 0; x < ow; x++) expect(out.data[y * ow + x]).toBe(col.data[y]);
    }
  });

  it('resizes every channel independently, like PIL does for each band', () => {
    for (const ch of [1, 2, 3, 4]) {
      const im = noise(19, 11, ch, 17 + ch);
      const out = resizeImage(im, 7, 13);
      expect(out.channels).toBe(ch);
      for (let c = 0; c < ch; c++) {
        const band = resizeImage(
          image(19, 11, 1, (x, y) => im.data[(y * 19 + x) * ch + c] as number),
          7,
          13,
        );
        const got = out.data.filter((_, i) => i % ch === c);
        expect([...got]).toEqual(px(band));
      }
    }
  });

  it('rejects malformed images and targets with typed errors', () => {
    const bad = { data: new Uint8Array(10), width: 2, height: 2, channels: 3 };
    expect(() => resizeImage(bad, 4, 4)).toThrow(TensorError);
    expect(() => resizeImage({ ...bad, data: new Uint8Array(20), channels: 5 }, 4, 4)).toThrow(
      /channel count/,
    );
    expect(() => resizeImage(noise(2, 2, 3, 1), 0, 4)).toThrow(QfError);
    expect(() => resizeImage(noise(2, 2, 3, 1), 3, 3, 'lanczos' as ResampleFilter)).toThrow(
      /unknown resample filter/,
    );
  });
});

describe('toRgb (PIL convert("RGB"))', () => {
  it('repeats grey, drops alpha without compositing, keeps RGB', () => {
    expect(px(toRgb(image(2, 1, 1, (x) => 10 + x)))).toEqual([10, 10, 10, 11, 11, 11]);
    expect(px(toRgb(image(2, 1, 2, (x, _, c) => (c ? 0 : 10 + x))))).toEqual([10, 10, 10, 11, 11, 11]);
    // A fully transparent pixel keeps its colour (no white or black background).
    const rgba = image(2, 1, 4, (x, _, c) => (c === 3 ? 0 : 50 * (c + 1) + x));
    expect(px(toRgb(rgba))).toEqual([50, 100, 150, 51, 101, 151]);
    const rgb = noise(3, 2, 3, 5);
    expect(toRgb(rgb)).toBe(rgb);
  });
});

describe('preprocessImage (BlipImageProcessor)', () => {
  const expected = (v: number, c: number) =>
    Math.fround(
      Math.fround(Math.fround(v / 255) - Math.fround(CLIP_MEAN[c] as number)) /
        Math.fround(CLIP_STD[c] as number),
    );

  it('rescales by 1/255, normalises per channel, and lays out HWC as CHW', () => {
    const im = image(3, 2, 3, (x, y, c) => 40 * x + 100 * y + c);
    const t = preprocessImage(im, { imageSize: 3, doResize: false });
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual([3, 2, 3]);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 3; x++) expect(t.data[c * 6 + y * 3 + x]).toBe(expected(40 * x + 100 * y + c, c));
  });

  it('converts to RGB, then resizes to S x S with bicubic', () => {
    const grey = noise(40, 24, 1, 9);
    const t = preprocessImage(grey, { imageSize: 16 });
    expect(t.shape).toEqual([3, 16, 16]);
    const resized = resizeImage(toRgb(grey), 16, 16, 'bicubic');
    for (let i = 0; i < 256; i++)
      for (let c = 0; c < 3; c++)
        expect(t.data[c * 256 + i]).toBe(expected(resized.data[i * 3 + c] as number, c));
    const bilinear = preprocessImage(grey, { imageSize: 16, resample: 'bilinear' });
    expect([...bilinear.data]).not.toEqual([...t.data]);
  });

  it('honours custom mean, std and rescale factor', () => {
    const t = preprocessImage(
      image(1, 1, 3, () => 200),
      {
        imageSize: 1,
        mean: [0.5, 0.5, 0.5],
        std: [0.25, 0.5, 1],
        rescaleFactor: 1 / 100,
      },
    );
    expect([...t.data]).toEqual([6, 3, 1.5]);
  });

  it('stacks a batch as [B, 3, S, S] and checks sizes and options', () => {
    const a = noise(20, 10, 3, 2);
    const b = noise(10, 30, 4, 3);
    const batch = preprocessImages([a, b], { imageSize: 8 });
    expect(batch.shape).toEqual([2, 3, 8, 8]);
    expect([...batch.data.subarray(192)]).toEqual([...preprocessImage(b, { imageSize: 8 }).data]);
    const err = (() => {
      try {
        preprocessImages([a, b], { imageSize: 8, doResize: false });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(TensorError);
    expect((err as TensorError).tensor).toBe('images[1]');
    expect(() => preprocessImages([], { imageSize: 8 })).toThrow(TensorError);
    expect(() => preprocessImage(a, { imageSize: 0 })).toThrow(
      expect.objectContaining({ code: 'PREPROCESS_OPTIONS' }),
    );
    expect(() => preprocessImage(a, { imageSize: 8, std: [1, 0, 1] })).toThrow(/std non-zero/);
  });
});
