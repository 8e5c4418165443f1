import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImageError,
  QfError,
  SourceError,
  decodeImage,
  decodeImageBlob,
  decodeImageFile,
  interleavedToRgb,
} from '../src/node/index.js';
import { rejectsWithCode } from './helpers.js';

/** CRC-32 (ISO-HDLC), as PNG chunks use it. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A PNG built by hand (independent of any encoder): 8-bit, colour type 0 (grey), 2 (RGB),
 * 4 (grey + alpha) or 6 (RGBA), no interlace, filter 0 on every row.
 */
function handPng(width: number, height: number, colourType: 0 | 2 | 4 | 6, pixels: Uint8Array): Uint8Array {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colourType];
  const raw = new Uint8Array(height * (1 + width * channels));
  for (let y = 0; y < height; y++)
    raw.set(
      pixels.subarray(y * width * channels, (y + 1) * width * channels),
      y * (1 + width * channels) + 1,
    );
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, colourType, 0, 0, 0], 8);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', new Uint8Array(deflateSync(raw))),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic pixels: value at (x, y, c). */
function pixels(
  width: number,
  height: number,
  channels: number,
  f: (x: number, y: number, c: number) => number,
) {
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) out[(y * width + x) * channels + c] = f(x, y, c);
  return out;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qf-image-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('decodeImageFile / decodeImage (sharp)', () => {
  it('decodes a hand-built RGB PNG exactly', async () => {
    const rgb = pixels(5, 3, 3, (x, y, c) => (x * 50 + y * 20 + c * 7) % 256);
    const path = join(dir, 'rgb.png');
    await writeFile(path, handPng(5, 3, 2, rgb));
    const img = await decodeImageFile(path);
    expect([img.width, img.height, img.channels]).toEqual([5, 3, 3]);
    expect(img.data).toBeInstanceOf(Uint8Array);
    expect([...img.data]).toEqual([...rgb]);
  });

  it('repeats grey into RGB and drops alpha without compositing (PIL convert("RGB"))', async () => {
    const grey = pixels(4, 2, 1, (x, y) => x * 60 + y);
    const fromGrey = await decodeImage(handPng(4, 2, 0, grey));
    expect([...fromGrey.data]).toEqual([...grey].flatMap((g) => [g, g, g]));

    const greyAlpha = pixels(4, 2, 2, (x, y, c) => (c ? x * 80 : 200 - x - y));
    const fromGreyAlpha = await decodeImage(handPng(4, 2, 4, greyAlpha));
    expect([...fromGreyAlpha.data]).toEqual([...grey.keys()].flatMap((i) => Array(3).fill(greyAlpha[2 * i])));

    // Alpha 0 in the first column: the colour underneath must survive (no white/black background).
    const rgba = pixels(3, 2, 4, (x, y, c) => (c === 3 ? x * 120 : 30 + 70 * c + x + 10 * y));
    const fromRgba = await decodeImage(handPng(3, 2, 6, rgba));
    expect(fromRgba.channels).toBe(3);
    expect([...fromRgba.data]).toEqual([...rgba].filter((_, i) => i % 4 !== 3));
  });

  it('decodes a PNG and a JPEG written by sharp (JPEG within lossy-codec error)', async () => {
    const w = 48;
    const h = 32;
    const smooth = pixels(w, h, 3, (x, y, c) => 20 + 2 * x + 2 * y + 30 * c);
    const source = sharp(Buffer.from(smooth), { raw: { width: w, height: h, channels: 3 } });
    await source.clone().png().toFile(join(dir, 'smooth.png'));
    await source.clone().jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toFile(join(dir, 'smooth.jpg'));
    const png = await decodeImageFile(join(dir, 'smooth.png'));
    expect([...png.data]).toEqual([...smooth]);
    const jpg = await decodeImageFile(join(dir, 'smooth.jpg'));
    expect([jpg.width, jpg.height, jpg.channels]).toEqual([w, h, 3]);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < smooth.length; i++) {
      const d = Math.abs((jpg.data[i] as number) - (smooth[i] as number));
      sum += d;
      max = Math.max(max, d);
    }
    // A smooth ramp at quality 95 without chroma subsampling comes back within a few levels.
    expect(sum / smooth.length).toBeLessThan(2);
    expect(max).toBeLessThanOrEqual(8);
  });

  it('keeps stored pixels by default and applies EXIF orientation on request', async () => {
    const path = join(dir, 'rotated.jpg');
    const px = pixels(6, 4, 3, (x) => (x < 3 ? 20 : 230));
    await sharp(Buffer.from(px), { raw: { width: 6, height: 4, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toFile(path);
    const stored = await decodeImageFile(path);
    expect([stored.width, stored.height]).toEqual([6, 4]);
    const oriented = await decodeImageFile(path, { autoOrient: true });
    expect([oriented.width, oriented.height]).toEqual([4, 6]);
  });

  it('throws typed errors for a non-image, a truncated image and a missing file', async () => {
    const text = join(dir, 'notes.txt');
    await writeFile(text, 'definitely not an image\n');
    const err = await rejectsWithCode(decodeImageFile(text), 'IMAGE_DECODE_FAILED');
    expect(err).toBeInstanceOf(ImageError);
    expect(err).toBeInstanceOf(QfError);
    expect(err.message).toContain(text);

    const png = handPng(
      16,
      16,
      2,
      pixels(16, 16, 3, (x, y, c) => (x * y + c) % 256),
    );
    await rejectsWithCode(decodeImage(png.subarray(0, png.length - 40)), 'IMAGE_DECODE_FAILED');
    await rejectsWithCode(decodeImage(new Uint8Array(0)), 'IMAGE_DECODE_FAILED');

    const missing = await rejectsWithCode(decodeImageFile(join(dir, 'nope.png')), 'SOURCE_NOT_FOUND');
    expect(missing).toBeInstanceOf(SourceError);
  });
});

describe('decodeImageBlob (browser entry)', () => {
  it('says clearly that it needs createImageBitmap and OffscreenCanvas (not in Node)', async () => {
    const blob = new Blob([handPng(1, 1, 2, new Uint8Array([1, 2, 3])) as Uint8Array<ArrayBuffer>], {
      type: 'image/png',
    });
    const err = await rejectsWithCode(decodeImageBlob(blob), 'IMAGE_UNSUPPORTED_ENVIRONMENT');
    expect(err).toBeInstanceOf(ImageError);
    expect(err.message).toMatch(/createImageBitmap.*OffscreenCanvas/);
  });
});

describe('interleavedToRgb', () => {
  it('maps 1..4 channels to RGB and rejects a wrong length', () => {
    expect([...interleavedToRgb(new Uint8Array([9, 8]), 2, 1, 1).data]).toEqual([9, 9, 9, 8, 8, 8]);
    expect([...interleavedToRgb(new Uint8ClampedArray([1, 2, 3, 0]), 1, 1, 4).data]).toEqual([1, 2, 3]);
    expect(() => interleavedToRgb(new Uint8Array(5), 2, 1, 3)).toThrow(ImageError);
  });
});
