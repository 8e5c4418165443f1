/**
 * A minimal, browser-safe PNG encoder (no zlib): 8-bit greyscale, RGB or RGBA, no interlace, filter
 * type 0 (None) on every scanline, and a zlib stream made of stored (uncompressed) deflate blocks of
 * at most 65535 bytes, with its Adler-32; every chunk carries its CRC-32. Files are a little larger
 * than the raw pixels, which is fine for sample images.
 */

/** An 8-bit image, HWC. `channels` 1 (grey), 3 (RGB) or 4 (RGBA). */
export interface PngImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const COLOUR_TYPE: Record<number, number> = { 1: 0, 3: 2, 4: 6 };
const MAX_STORED = 65535;

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309 / PNG, polynomial 0xEDB88320) of `bytes`. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (crcTable[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Adler-32 (zlib) of `bytes`. */
export function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; i++) {
    a = (a + (bytes[i] as number)) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Encodes an 8-bit image as a PNG file. */
export function writePng(image: PngImage): Uint8Array<ArrayBuffer> {
  const { data, width, height, channels } = image;
  const colourType = COLOUR_TYPE[channels];
  if (colourType === undefined) throw new RangeError(`writePng: channels must be 1, 3 or 4, got ${channels}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`writePng: bad size ${width}x${height}`);
  }
  const rowBytes = width * channels;
  if (data.length !== rowBytes * height) {
    throw new RangeError(`writePng: data has ${data.length} bytes, expected ${rowBytes * height}`);
  }
  // Raw scanlines: a filter byte (0 = None) then the row.
  const raw = new Uint8Array((rowBytes + 1) * height);
  for (let y = 0; y < height; y++)
    raw.set(data.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);

  // zlib: CMF/FLG (deflate, 32K window, no dictionary, header % 31 == 0), stored blocks, Adler-32.
  const blocks = Math.max(1, Math.ceil(raw.length / MAX_STORED));
  const zlib = new Uint8Array(2 + blocks * 5 + raw.length + 4);
  zlib[0] = 0x78;
  zlib[1] = 0x01;
  let o = 2;
  for (let k = 0; k < blocks; k++) {
    const start = k * MAX_STORED;
    const len = Math.min(MAX_STORED, raw.length - start);
    zlib[o++] = k === blocks - 1 ? 1 : 0; // BFINAL, BTYPE = 00 (stored)
    zlib[o++] = len & 0xff;
    zlib[o++] = len >>> 8;
    zlib[o++] = ~len & 0xff;
    zlib[o++] = (~len >>> 8) & 0xff;
    zlib.set(raw.subarray(start, start + len), o);
    o += len;
  }
  writeU32(zlib, o, adler32(raw));

  const ihdr = new Uint8Array(13);
  writeU32(ihdr, 0, width);
  writeU32(ihdr, 4, height);
  ihdr.set([8, colourType, 0, 0, 0], 8); // bit depth, colour type, compression, filter, interlace

  const chunks = [chunk('IHDR', ihdr), chunk('IDAT', zlib), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(SIGNATURE.length + chunks.reduce((n, c) => n + c.length, 0));
  out.set(SIGNATURE, 0);
  let p = SIGNATURE.length;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

function writeU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 24) & 0xff;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}

/** length, type, data, CRC-32 of type + data. */
function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  writeU32(out, 0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  writeU32(out, 8 + body.length, crc32(out, 4, 8 + body.length));
  return out;
}
