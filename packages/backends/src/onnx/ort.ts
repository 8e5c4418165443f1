import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { type HostTensor, TensorError, toFloat32, toInt32 } from '@qf/io';
import type { ElemType } from './trace.js';

/**
 * The parts of an onnxruntime module the backend uses: `onnxruntime-node` in Node,
 * `onnxruntime-web` (or `onnxruntime-web/webgpu`) in browsers. The host imports it and passes it in;
 * the backend never imports a runtime itself.
 */
export interface OrtModule {
  readonly InferenceSession: {
    create(model: Uint8Array | string, options?: InferenceSession.SessionOptions): Promise<InferenceSession>;
  };
  readonly Tensor: new (
    type: 'float32' | 'int64',
    data: Float32Array | BigInt64Array,
    dims: readonly number[],
  ) => Tensor;
}

export type { InferenceSession, Tensor };

const FLOATS = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Element type a host tensor is fed as: float dtypes -> float32, integer/bool dtypes -> int64. */
export function elemTypeOf(t: HostTensor): ElemType {
  return FLOATS.has(t.dtype) ? 'float32' : 'int64';
}

/** Host tensor -> ORT tensor (float32 or int64; F32 and I64 data are not copied). */
export function toOrtTensor(ort: OrtModule, name: string, t: HostTensor): Tensor {
  const dims = [...t.shape];
  if (elemTypeOf(t) === 'float32') return new ort.Tensor('float32', toFloat32(t), dims);
  if (t.dtype === 'I64') return new ort.Tensor('int64', t.data as BigInt64Array, dims);
  if (t.dtype === 'BOOL' || t.dtype === 'U8' || t.dtype === 'I8' || t.dtype === 'I16' || t.dtype === 'I32') {
    const src = t.dtype === 'I32' ? (t.data as Int32Array) : toInt32(t, name);
    return new ort.Tensor(
      'int64',
      BigInt64Array.from(src, (v) => BigInt(v)),
      dims,
    );
  }
  throw new TensorError(
    'TENSOR_DTYPE',
    name,
    'unsupported input dtype for the onnx backend',
    'F32 | F16 | BF16 | F64 | I64 | I32 | I16 | I8 | U8 | BOOL',
    t.dtype,
  );
}

/** ORT tensor -> host tensor: float32 -> F32 (no copy), int64/int32/bool -> I32. */
export function fromOrtTensor(name: string, t: Tensor): HostTensor {
  const shape = t.dims.map(Number);
  switch (t.type) {
    case 'float32':
      return { dtype: 'F32', shape, data: t.data as Float32Array };
    case 'int64':
      return { dtype: 'I32', shape, data: Int32Array.from(t.data as BigInt64Array, (v) => Number(v)) };
    case 'int32':
      return { dtype: 'I32', shape, data: t.data as Int32Array };
    case 'bool':
      return { dtype: 'I32', shape, data: Int32Array.from(t.data as Uint8Array) };
    default:
      throw new TensorError(
        'TENSOR_DTYPE',
        name,
        'unsupported output dtype from ONNX Runtime',
        'float32 | int64 | int32 | bool',
        t.type,
      );
  }
}
