import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { generateShapes, writePng } from '../src/index.js';

/** Bitwise CRC-32 (no table), independent of the encoder's. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

const u32 = (b: Uint8Array, at: number) =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** Parses chunks (checking every CRC), inflates the stored deflate blocks by hand, undoes filter 0. */
function decode(png: Uint8Array) {
  expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks: { type: string; body: Uint8Array }[] = [];
  let p = 8;
  while (p < png.length) {
    const len = u32(png, p);
    const type = String.fromCharCode(...png.subarray(p + 4, p + 8));
    const body = png.subarray(p + 8, p + 8 + len);
    expect(u32(png, p + 8 + len), `${type} CRC`).toBe(crc32(png.subarray(p + 4, p + 8 + len)));
    chunks.push({ type, body });
    p += 12 + len;
  }
  expect(p).toBe(png.length);
  expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
  const ihdr = chunks[0]!.body;
  const [width, height] = [u32(ihdr, 0), u32(ihdr, 4)];
  const [depth, colourType, compression, filter, interlace] = ihdr.subarray(8);
  expect([depth, compression, filter, interlace]).toEqual([8, 0, 0, 0]);
  const channels = { 0: 1, 2: 3, 6: 4 }[colourType as 0 | 2 | 6];
  const z = chunks[1]!.body;
  expect(((z[0]! << 8) | z[1]!) % 31).toBe(0);
  expect(z[0]! & 0x0f).toBe(8); // deflate
  const parts: Uint8Array[] = [];
  let q = 2;
  let final = 0;
  let blocks = 0;
  while (!final) {
    final = z[q]! & 1;
    expect((z[q]! >> 1) & 3).toBe(0); // stored
    const len = z[q + 1]! | (z[q + 2]! << 8);
    const nlen = z[q + 3]! | (z[q + 4]! << 8);
    expect(len ^ 0xffff).toBe(nlen);
    parts.push(z.subarray(q + 5, q + 5 + len));
    q += 5 + len;
    blocks++;
  }
  const raw = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of parts) {
    raw.set(x, o);
    o += x.length;
  }
  expect(q + 4).toBe(z.length); // Adler-32 follows
  expect(Buffer.from(inflateSync(z))).toEqual(Buffer.from(raw)); // zlib agrees, Adler-32 included
  const rowBytes = width * channels!;
  const data = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (rowBytes + 1)]).toBe(0);
    data.set(raw.subarray(y * (rowBytes + 1) + 1, (y + 1) * (rowBytes + 1)), y * rowBytes);
  }
  return { width, height, channels, data, blocks };
}

describe('writePng', () => {
  it('writes a valid RGB PNG of a shapes image that decodes to the same pixels', () => {
    const ex = generateShapes({ seed: 5, counts: { train: 0, validation: 0, test: 1 } }).test[0]!;
    const png = writePng(ex.image);
    const d = decode(png);
    expect(d).toMatchObject({ width: 32, height: 32, channels: 3, blocks: 1 });
    expect(d.data).toEqual(ex.image.data);
  });

  it('splits data over several stored blocks and supports grey and RGBA', () => {
    const [w, h] = [150, 130]; // 130 * (150*4 + 1) = 78130 bytes: two stored blocks
    const rgba = new Uint8Array(w * h * 4).map((_, k) => (k * 7919) & 0xff);
    const d = decode(writePng({ data: rgba, width: w, height: h, channels: 4 }));
    expect(d).toMatchObject({ width: w, height: h, channels: 4, blocks: 2 });
    expect(d.data).toEqual(rgba);
    const grey = new Uint8Array([0, 64, 128, 255, 1, 2]);
    expect(decode(writePng({ data: grey, width: 3, height: 2, channels: 1 })).data).toEqual(grey);
  });

  it('rejects inconsistent images', () => {
    expect(() => writePng({ data: new Uint8Array(5), width: 2, height: 1, channels: 3 })).toThrow(RangeError);
    expect(() => writePng({ data: new Uint8Array(4), width: 2, height: 1, channels: 2 })).toThrow(RangeError);
    expect(() => writePng({ data: new Uint8Array(0), width: 0, height: 0, channels: 3 })).toThrow(RangeError);
  });
});
