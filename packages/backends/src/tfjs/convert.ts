import { type HostTensor, toFloat32, toInt32 } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';

const FLOATS = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Host tensor -> tfjs tensor: float dtypes become float32, integer/bool dtypes int32. */
export function upload(name: string, t: HostTensor): tf.Tensor {
  const shape = [...t.shape];
  return FLOATS.has(t.dtype)
    ? tf.tensor(toFloat32(t), shape, 'float32')
    : tf.tensor(toInt32(t, name), shape, 'int32');
}

/** tfjs tensor -> host tensor (F32 or I32). Does not dispose `x`. */
export async function download(x: tf.Tensor): Promise<HostTensor> {
  const shape = [...x.shape];
  if (x.dtype === 'int32' || x.dtype === 'bool')
    return { dtype: 'I32', shape, data: Int32Array.from(await x.data()) };
  return { dtype: 'F32', shape, data: new Float32Array(await x.data()) };
}
