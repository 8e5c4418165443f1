import { describe, expect, it } from 'vitest';
import {
  TensorError,
  bf16ArrayToF32,
  bf16ToF32,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
  fromFloat32,
  hostTensor,
  toFloat32,
  toInt32,
} from '../src/index.js';
import { throwsWithCode } from './helpers.js';

/** Exact value of an F16 bit pattern, computed independently of the implementation. */
function f16Exact(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Exact value of a BF16 bit pattern. */
function bf16Exact(b: number): number {
  const s = b & 0x8000 ? -1 : 1;
  const e = (b >> 7) & 0xff;
  const m = b & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 128) * 2 ** (e - 127);
}

/** Checks that `bits` is the correctly rounded (nearest, ties to even) encoding of finite `x`. */
function checkNearest(
  x: number,
  bits: number,
  exact: (b: number) => number,
  maxFinite: number,
  mantBits: number,
) {
  const v = exact(bits);
  const mag = Math.abs(x);
  const ulpAtMax = 2 ** (Math.floor(Math.log2(maxFinite)) - mantBits);
  if (mag >= maxFinite + ulpAtMax / 2) {
    expect(v).toBe(Math.sign(x) * Number.POSITIVE_INFINITY);
    return;
  }
  const err = Math.abs(v - x);
  for (const n of [bits - 1, bits + 1]) {
    if ((n & 0x7fff) === (bits & 0x7fff) || n < 0 || n > 0xffff) continue;
    const w = exact(n);
    if (!Number.isFinite(w)) continue;
    const e2 = Math.abs(w - x);
    expect(err <= e2).toBe(true);
    if (err === e2) expect(bits & 1).toBe(0);
  }
}

function randomF32(seed: number, count: number): Float32Array {
  let s = seed >>> 0;
  const bits = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bits[i] = s;
  }
  return new Float32Array(bits.buffer);
}

describe('F16', () => {
  it('widens every bit pattern exactly and narrows it back unchanged', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16ToF32(h);
      const exact = f16Exact(h);
      if (Number.isNaN(exact)) {
        expect(Number.isNaN(v)).toBe(true);
        expect(f32ToF16(v) & 0x7c00).toBe(0x7c00);
        expect(f32ToF16(v) & 0x3ff).not.toBe(0);
      } else {
        expect(Object.is(v, exact)).toBe(true);
        expect(f32ToF16(v)).toBe(h);
      }
    }
  });

  it('narrows to the nearest F16, ties to even, over random float32 values', () => {
    const xs = randomF32(7, 20000);
    for (const x of xs) {
      if (!Number.isFinite(x)) continue;
      checkNearest(x, f32ToF16(x), f16Exact, 65504, 10);
    }
  });

  it('handles special values, overflow, subnormals and underflow', () => {
    expect(f32ToF16(0)).toBe(0);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(f32ToF16(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
    expect(Number.isNaN(f16ToF32(f32ToF16(Number.NaN)))).toBe(true);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519)).toBe(0x7bff); // below the rounding boundary
    expect(f32ToF16(65520)).toBe(0x7c00); // halfway to 2^16 rounds to even = Infinity
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie -> even (0)
    expect(f32ToF16(2 ** -25 * 1.5)).toBe(0x0001);
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 -> even
    expect(f32ToF16(-(2 ** -14))).toBe(0x8400); // smallest normal
    expect(f32ToF16(1e-10)).toBe(0);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f16ToF32(0x3555)).toBeCloseTo(0.333251953125, 12);
  });

  it('converts arrays', () => {
    const src = new Float32Array([1, -2.5, 0.1, 65504, Number.NaN, Number.NEGATIVE_INFINITY, 2 ** -20]);
    const back = f16ArrayToF32(f32ArrayToF16(src));
    expect(back[0]).toBe(1);
    expect(back[1]).toBe(-2.5);
    expect(back[2]).toBe(f16ToF32(f32ToF16(0.1)));
    expect(back[3]).toBe(65504);
    expect(Number.isNaN(back[4])).toBe(true);
    expect(back[5]).toBe(Number.NEGATIVE_INFINITY);
    expect(back[6]).toBe(2 ** -20);
    expect(f32ArrayToF16([1, 2])).toEqual(new Uint16Array([0x3c00, 0x4000]));
  });
});

describe('BF16', () => {
  it('widens every bit pattern exactly and narrows it back unchanged', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = bf16ToF32(b);
      const exact = bf16Exact(b);
      if (Number.isNaN(exact)) {
        expect(Number.isNaN(v)).toBe(true);
        expect(Number.isNaN(bf16ToF32(f32ToBf16(v)))).toBe(true);
      } else {
        expect(Object.is(v, exact)).toBe(true);
        expect(f32ToBf16(v)).toBe(b);
      }
    }
  });

  it('narrows to the nearest BF16, ties to even, over random float32 values', () => {
    const maxFinite = bf16Exact(0x7f7f);
    for (const x of randomF32(11, 20000)) {
      if (!Number.isFinite(x)) continue;
      checkNearest(x, f32ToBf16(x), bf16Exact, maxFinite, 7);
    }
  });

  it('handles special values and keeps NaN a NaN even when truncation would give Infinity', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(-0)).toBe(0x8000);
    expect(f32ToBf16(Number.POSITIVE_INFINITY)).toBe(0x7f80);
    const nan = new Float32Array(new Uint32Array([0x7f800001]).buffer)[0]!; // payload only in low bits
    expect(Number.isNaN(bf16ToF32(f32ToBf16(nan)))).toBe(true);
    expect(f32ToBf16(3.4e38)).toBe(0x7f80); // rounds past the largest finite BF16
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bf16ToF32(0x0001)).toBe(2 ** -133); // subnormal
    const back = bf16ArrayToF32(f32ArrayToBf16(new Float32Array([3.140625, -1e-40])));
    expect(back[0]).toBe(3.140625);
    expect(back[1]).toBe(bf16ToF32(f32ToBf16(-1e-40)));
  });
});

describe('hostTensor', () => {
  it('builds tensors and copies the shape', () => {
    const shape = [2, 3];
    const t = hostTensor('F32', shape, new Float32Array(6));
    shape[0] = 9;
    expect(t.shape).toEqual([2, 3]);
    expect(hostTensor('I64', [], new BigInt64Array(1)).shape).toEqual([]);
    expect(hostTensor('U8', [0, 4], new Uint8Array(0)).data.length).toBe(0);
  });

  it('rejects a length mismatch, a bad shape and the wrong array kind, naming the tensor', () => {
    const e = throwsWithCode(() => hostTensor('F32', [2, 3], new Float32Array(5), 'w'), 'TENSOR_SHAPE');
    expect(e.message).toContain('"w"');
    expect(e.message).toContain('6 elements');
    expect(e.message).toContain('5 elements');
    throwsWithCode(() => hostTensor('F32', [-1], new Float32Array(0)), 'TENSOR_SHAPE');
    throwsWithCode(() => hostTensor('F32', [1.5], new Float32Array(1)), 'TENSOR_SHAPE');
    throwsWithCode(
      () => hostTensor('F16', [2], new Float32Array(2) as unknown as Uint16Array),
      'TENSOR_DTYPE',
    );
    throwsWithCode(
      () => hostTensor('I64', [2], new Int32Array(2) as unknown as BigInt64Array),
      'TENSOR_DTYPE',
    );
  });
});

describe('toFloat32 / toInt32 / fromFloat32', () => {
  it('converts every dtype to float32', () => {
    const f32 = new Float32Array([1.5, -2]);
    expect(toFloat32(hostTensor('F32', [2], f32))).toBe(f32);
    expect(toFloat32(hostTensor('F16', [2], f32ArrayToF16(f32)))).toEqual(f32);
    expect(toFloat32(hostTensor('BF16', [2], f32ArrayToBf16(f32)))).toEqual(f32);
    expect(toFloat32(hostTensor('F64', [2], new Float64Array([1.5, -2])))).toEqual(f32);
    expect(toFloat32(hostTensor('I64', [2], new BigInt64Array([3n, -4n])))).toEqual(
      new Float32Array([3, -4]),
    );
    expect(toFloat32(hostTensor('I32', [1], new Int32Array([7])))).toEqual(new Float32Array([7]));
    expect(toFloat32(hostTensor('I16', [1], new Int16Array([-7])))).toEqual(new Float32Array([-7]));
    expect(toFloat32(hostTensor('I8', [1], new Int8Array([-8])))).toEqual(new Float32Array([-8]));
    expect(toFloat32(hostTensor('U8', [1], new Uint8Array([200])))).toEqual(new Float32Array([200]));
    expect(toFloat32(hostTensor('BOOL', [2], new Uint8Array([1, 0])))).toEqual(new Float32Array([1, 0]));
  });

  it('converts integer dtypes to int32 and rejects floats and out-of-range I64', () => {
    const i32 = new Int32Array([1, 2]);
    expect(toInt32(hostTensor('I32', [2], i32), 'x')).toBe(i32);
    expect(toInt32(hostTensor('I64', [2], new BigInt64Array([-2147483648n, 2147483647n])), 'x')).toEqual(
      new Int32Array([-2147483648, 2147483647]),
    );
    expect(toInt32(hostTensor('U8', [1], new Uint8Array([255])), 'x')).toEqual(new Int32Array([255]));
    expect(toInt32(hostTensor('BOOL', [1], new Uint8Array([1])), 'x')).toEqual(new Int32Array([1]));
    const e = throwsWithCode(
      () => toInt32(hostTensor('I64', [2], new BigInt64Array([0n, 2147483648n])), 'ids'),
      'TENSOR_VALUE',
    );
    expect(e).toBeInstanceOf(TensorError);
    expect((e as TensorError).tensor).toBe('ids');
    expect(e.message).toContain('2147483648');
    throwsWithCode(
      () => toInt32(hostTensor('I64', [1], new BigInt64Array([-(2n ** 40n)])), 'ids'),
      'TENSOR_VALUE',
    );
    throwsWithCode(() => toInt32(hostTensor('F32', [1], new Float32Array(1)), 'mask'), 'TENSOR_DTYPE');
  });

  it('builds float tensors of every float dtype from float32', () => {
    const f = new Float32Array([0.5, 3]);
    expect(fromFloat32('F16', [2], f).data).toEqual(f32ArrayToF16(f));
    expect(fromFloat32('BF16', [2], f).data).toEqual(f32ArrayToBf16(f));
    expect(fromFloat32('F64', [2], f).data).toEqual(new Float64Array([0.5, 3]));
    expect(fromFloat32('F32', [2], f).data).toBe(f);
  });
});
