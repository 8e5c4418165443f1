import { TensorError, fmtShape } from './errors.js';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from './half.js';

export {
  bf16ArrayToF32,
  bf16ToF32,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
} from './half.js';

/** Tensor dtypes as spelled in safetensors headers. */
export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The typed array that holds each dtype's elements on the host. F16/BF16 keep their raw bits. */
export interface DTypeArrays {
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  F64: Float64Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

/** A tensor on the host: dtype, shape and a typed array of product(shape) elements (row-major). */
export interface HostTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DTypeArrays[D];
}

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Number of elements of a shape (1 for a 0-d scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Every dtype this package reads and writes, in safetensors spelling. */
export const DTYPES: readonly DType[] = [
  'F32',
  'F16',
  'BF16',
  'F64',
  'I64',
  'I32',
  'I16',
  'I8',
  'U8',
  'BOOL',
];

/** Floating-point dtypes. */
export type FloatDType = 'F32' | 'F16' | 'BF16' | 'F64';

/** Integer (and boolean) dtypes. */
export type IntDType = Exclude<DType, FloatDType>;

/** True when `s` is one of {@link DTYPES}. */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

/** True for F32, F16, BF16 and F64. */
export function isFloatDType(d: DType): d is FloatDType {
  return d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';
}

const ARRAY_TAG: Readonly<Record<DType, string>> = {
  F32: 'Float32Array',
  F16: 'Uint16Array',
  BF16: 'Uint16Array',
  F64: 'Float64Array',
  I64: 'BigInt64Array',
  I32: 'Int32Array',
  I16: 'Int16Array',
  I8: 'Int8Array',
  U8: 'Uint8Array',
  BOOL: 'Uint8Array',
};

/** The name of the typed array class that holds `dtype` (e.g. `Uint16Array` for F16). */
export function arrayTypeName(dtype: DType): string {
  return ARRAY_TAG[dtype];
}

/** True when `data` is the typed array kind that holds `dtype` (realm-safe check). */
export function isArrayOfDType<D extends DType>(dtype: D, data: unknown): data is DTypeArrays[D] {
  return Object.prototype.toString.call(data) === `[object ${ARRAY_TAG[dtype]}]`;
}

/**
 * Views `length` elements of `dtype` over `buffer` starting at `byteOffset` (which must be aligned to
 * the element size). No copy.
 */
export function typedArrayView<D extends DType>(
  dtype: D,
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
): DTypeArrays[D] {
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, byteOffset, length) as DTypeArrays[D];
    case 'F16':
    case 'BF16':
      return new Uint16Array(buffer, byteOffset, length) as DTypeArrays[D];
    case 'F64':
      return new Float64Array(buffer, byteOffset, length) as DTypeArrays[D];
    case 'I64':
      return new BigInt64Array(buffer, byteOffset, length) as DTypeArrays[D];
    case 'I32':
      return new Int32Array(buffer, byteOffset, length) as DTypeArrays[D];
    case 'I16':
      return new Int16Array(buffer, byteOffset, length) as DTypeArrays[D];
    case 'I8':
      return new Int8Array(buffer, byteOffset, length) as DTypeArrays[D];
    default:
      return new Uint8Array(buffer, byteOffset, length) as DTypeArrays[D];
  }
}

/** Allocates a zero-filled typed array of `length` elements for `dtype`. */
export function allocTypedArray<D extends DType>(dtype: D, length: number): DTypeArrays[D] {
  return typedArrayView(dtype, new ArrayBuffer(length * DTYPE_BYTES[dtype]), 0, length);
}

/**
 * Checks that a shape is an array of non-negative safe integers; throws TensorError `TENSOR_SHAPE`
 * naming `name` otherwise.
 */
export function checkShape(shape: readonly number[], name: string): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new TensorError(
      'TENSOR_SHAPE',
      name,
      'invalid shape',
      'an array of non-negative integers',
      JSON.stringify(shape),
    );
  }
}

/**
 * Builds a {@link HostTensor}, checking that the shape is valid, that `data` is the typed array kind
 * of `dtype` (TensorError `TENSOR_DTYPE`) and that `data.length == numel(shape)` (`TENSOR_SHAPE`).
 * The shape is copied; the data is not.
 */
export function hostTensor<D extends DType>(
  dtype: D,
  shape: readonly number[],
  data: DTypeArrays[D],
  name = '<tensor>',
): HostTensor<D> {
  checkShape(shape, name);
  if (!isDType(dtype)) {
    throw new TensorError('TENSOR_DTYPE', name, 'unknown dtype', DTYPES.join('|'), String(dtype));
  }
  const actual = Object.prototype.toString.call(data as unknown).slice(8, -1);
  if (!isArrayOfDType(dtype, data)) {
    throw new TensorError('TENSOR_DTYPE', name, `data does not hold ${dtype}`, ARRAY_TAG[dtype], actual);
  }
  const n = numel(shape);
  if (data.length !== n) {
    throw new TensorError(
      'TENSOR_SHAPE',
      name,
      `data length does not match shape ${fmtShape(shape)}`,
      `${n} elements`,
      `${data.length} elements`,
    );
  }
  return { dtype, shape: [...shape], data };
}

/**
 * The values of any tensor as float32. F32 data is returned as is (not copied); F16/BF16 are widened
 * exactly; F64 and integers are rounded to the nearest float32; BOOL gives 0/1.
 */
export function toFloat32(t: HostTensor): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F16':
      return f16ArrayToF32(t.data as Uint16Array);
    case 'BF16':
      return bf16ArrayToF32(t.data as Uint16Array);
    case 'I64': {
      const src = t.data as BigInt64Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]!);
      return out;
    }
    default:
      return Float32Array.from(t.data as ArrayLike<number>);
  }
}

/**
 * The values of an integer or BOOL tensor as int32. I32 data is returned as is (not copied). Float
 * dtypes throw TensorError `TENSOR_DTYPE`; I64 values outside the int32 range throw `TENSOR_VALUE`;
 * both name the tensor.
 */
export function toInt32(t: HostTensor, name: string): Int32Array {
  switch (t.dtype) {
    case 'I32':
      return t.data as Int32Array;
    case 'I64': {
      const src = t.data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i]!;
        if (v < -2147483648n || v > 2147483647n) {
          throw new TensorError(
            'TENSOR_VALUE',
            name,
            `element ${i} does not fit in int32`,
            '-2147483648..2147483647',
            String(v),
          );
        }
        out[i] = Number(v);
      }
      return out;
    }
    case 'I16':
    case 'I8':
    case 'U8':
    case 'BOOL':
      return Int32Array.from(t.data as ArrayLike<number>);
    default:
      throw new TensorError(
        'TENSOR_DTYPE',
        name,
        'expected an integer tensor',
        'I64|I32|I16|I8|U8|BOOL',
        t.dtype,
      );
  }
}

/**
 * Builds a float tensor of `dtype` from float32 values: F32 keeps `data` (not copied), F16/BF16 round
 * to nearest even, F64 widens exactly.
 */
export function fromFloat32<D extends FloatDType>(
  dtype: D,
  shape: readonly number[],
  data: Float32Array,
  name = '<tensor>',
): HostTensor<D> {
  let out: DTypeArrays[FloatDType];
  switch (dtype) {
    case 'F16':
      out = f32ArrayToF16(data);
      break;
    case 'BF16':
      out = f32ArrayToBf16(data);
      break;
    case 'F64':
      out = Float64Array.from(data);
      break;
    default:
      out = data;
  }
  return hostTensor(dtype, shape, out as DTypeArrays[D], name);
}
