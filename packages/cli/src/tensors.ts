import { type HostTensor, TensorError, fmtShape, toFloat32 } from '@qf/io';
import { openSafetensors } from '@qf/io/node';

/** Every tensor of a safetensors file, read into memory, plus its metadata. */
export async function readSafetensorsFile(
  path: string,
): Promise<{ tensors: Record<string, HostTensor>; metadata: Readonly<Record<string, string>> }> {
  const file = await openSafetensors(path);
  try {
    return { tensors: await file.readAll(), metadata: file.metadata };
  } finally {
    await file.close();
  }
}

/** The tensor as F32 (a no-op for F32). */
export function asF32(t: HostTensor): HostTensor<'F32'> {
  return t.dtype === 'F32'
    ? (t as HostTensor<'F32'>)
    : { dtype: 'F32', shape: [...t.shape], data: toFloat32(t) };
}

/**
 * Concatenates tensors of one dtype along axis 0 (row-major, so the data just follows on). With
 * `stack`, adds a new leading axis instead. Shapes past the concatenated axis must agree.
 */
export function concatRows<D extends 'F32' | 'I64'>(
  name: string,
  parts: readonly HostTensor<D>[],
  stack = false,
): HostTensor<D> {
  const first = parts[0];
  if (first === undefined) throw new TensorError('TENSOR_MISSING', name, 'nothing to concatenate');
  const tail = stack ? first.shape : first.shape.slice(1);
  let rows = 0;
  let length = 0;
  for (const p of parts) {
    const pTail = stack ? p.shape : p.shape.slice(1);
    if (p.dtype !== first.dtype || fmtShape(pTail) !== fmtShape(tail)) {
      throw new TensorError(
        'TENSOR_SHAPE',
        name,
        'parts do not line up',
        fmtShape(first.shape),
        fmtShape(p.shape),
      );
    }
    rows += stack ? 1 : (p.shape[0] ?? 0);
    length += p.data.length;
  }
  const data = (
    first.dtype === 'I64' ? new BigInt64Array(length) : new Float32Array(length)
  ) as HostTensor<D>['data'];
  let offset = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, offset);
    offset += p.data.length;
  }
  return { dtype: first.dtype, shape: [rows, ...tail], data };
}
