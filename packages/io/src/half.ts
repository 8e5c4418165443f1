/**
 * IEEE binary16 (F16) and bfloat16 (BF16) <-> float32 conversion on raw bits.
 *
 * Narrowing rounds to nearest, ties to even; overflow gives ±Infinity; values below half of the
 * smallest subnormal give ±0; NaN stays NaN (quiet, with the top payload bits kept). Widening is exact.
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The float32 bit pattern (as an unsigned 32-bit integer) of an F16 bit pattern. Exact. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // Subnormal: shift the mantissa up until the implicit bit appears.
    let e = 113; // 127 - 15 + 1
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
  }
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

/** The F16 bit pattern nearest to a float32 bit pattern (round to nearest, ties to even). */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Result is subnormal (or zero): value / 2^-24, rounded.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may reach Infinity: correct
  return sign | h;
}

/** The float32 bit pattern of a BF16 bit pattern. Exact. */
export function bf16BitsToF32Bits(b: number): number {
  return ((b & 0xffff) << 16) >>> 0;
}

/** The BF16 bit pattern nearest to a float32 bit pattern (round to nearest, ties to even). */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts one F16 bit pattern to its number value. */
export function f16ToF32(bits: number): number {
  u32Scratch[0] = f16BitsToF32Bits(bits);
  return f32Scratch[0]!;
}

/** Converts a number (first rounded to float32) to the nearest F16 bit pattern. */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  return f32BitsToF16Bits(u32Scratch[0]!);
}

/** Converts one BF16 bit pattern to its number value. */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = bf16BitsToF32Bits(bits);
  return f32Scratch[0]!;
}

/** Converts a number (first rounded to float32) to the nearest BF16 bit pattern. */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  return f32BitsToBf16Bits(u32Scratch[0]!);
}

/** Widens an array of F16 bit patterns to a new Float32Array (exact, NaN payloads kept). */
export function f16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = f16BitsToF32Bits(src[i]!);
  return out;
}

/** Widens an array of BF16 bit patterns to a new Float32Array (exact, NaN payloads kept). */
export function bf16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = (src[i]! << 16) >>> 0;
  return out;
}

function asFloat32(src: Float32Array | ArrayLike<number>): Float32Array {
  return src instanceof Float32Array ? src : Float32Array.from(src);
}

/** Narrows float32 values to a new Uint16Array of F16 bit patterns (round to nearest even). */
export function f32ArrayToF16(src: Float32Array | ArrayLike<number>): Uint16Array {
  const f = asFloat32(src);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** Narrows float32 values to a new Uint16Array of BF16 bit patterns (round to nearest even). */
export function f32ArrayToBf16(src: Float32Array | ArrayLike<number>): Uint16Array {
  const f = asFloat32(src);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}
