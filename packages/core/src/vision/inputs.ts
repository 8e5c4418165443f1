import { type DType, type HostTensor, TensorError, type VisionConfig, fmtShape, toFloat32 } from '@qf/io';

const FLOAT: readonly DType[] = ['F32', 'F16', 'BF16', 'F64'];

/**
 * Checks the vision tower's inputs: exactly `pixel_values`, a float tensor [B, 3, S, S] with
 * B >= 1 and S = `image_size`, every value finite. Errors name `pixel_values` with expected vs
 * actual.
 * @throws TensorError `TENSOR_UNEXPECTED`, `TENSOR_MISSING`, `TENSOR_DTYPE`, `TENSOR_SHAPE` or `TENSOR_VALUE`
 */
export function validateVisionInputs(config: VisionConfig, inputs: Record<string, HostTensor>): void {
  for (const name of Object.keys(inputs)) {
    if (name !== 'pixel_values')
      throw new TensorError('TENSOR_UNEXPECTED', name, 'unknown input; the vision tower takes pixel_values');
  }
  const px = inputs['pixel_values'];
  if (!px) throw new TensorError('TENSOR_MISSING', 'pixel_values', 'the vision tower needs pixel_values');
  if (!FLOAT.includes(px.dtype))
    throw new TensorError('TENSOR_DTYPE', 'pixel_values', 'unsupported dtype', FLOAT.join(' | '), px.dtype);
  const s = config.imageSize;
  const [b, c, h, w] = px.shape;
  if (px.shape.length !== 4 || !(b !== undefined && b >= 1) || c !== 3 || h !== s || w !== s) {
    throw new TensorError(
      'TENSOR_SHAPE',
      'pixel_values',
      'wrong shape',
      `[B, 3, ${s}, ${s}]`,
      fmtShape(px.shape),
    );
  }
  const data = toFloat32(px);
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (!Number.isFinite(v)) {
      const at = [Math.floor(i / (3 * s * s)), Math.floor(i / (s * s)) % 3, Math.floor(i / s) % s, i % s];
      throw new TensorError(
        'TENSOR_VALUE',
        'pixel_values',
        `non-finite value at ${fmtShape(at)}`,
        'finite',
        String(v),
      );
    }
  }
}
