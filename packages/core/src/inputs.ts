import { type DType, type HostTensor, TensorError, fmtShape, hostTensor, toInt32 } from '@qf/io';
import type { QFormerGraphOptions, QFormerInputName } from './graph.js';
import type { QFormerModelSpec } from './spec.js';

const FLOAT: readonly DType[] = ['F32', 'F16', 'BF16', 'F64'];
const INT: readonly DType[] = ['I64', 'I32'];
const MASK: readonly DType[] = ['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F32'];
const KNOWN: readonly QFormerInputName[] = [
  'image_embeds',
  'image_attention_mask',
  'input_ids',
  'attention_mask',
];

function checkDType(name: string, t: HostTensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new TensorError('TENSOR_DTYPE', name, 'unsupported dtype', allowed.join(' | '), t.dtype);
  }
}

function checkShape(name: string, t: HostTensor, expected: readonly (number | string)[]): void {
  const ok =
    t.shape.length === expected.length && expected.every((e, i) => typeof e === 'string' || e === t.shape[i]);
  if (!ok)
    throw new TensorError('TENSOR_SHAPE', name, 'wrong shape', `[${expected.join(', ')}]`, fmtShape(t.shape));
}

/**
 * `t` is a well-formed host tensor: an object with a known dtype, a shape of non-negative integers
 * and a typed array of that dtype holding exactly numel(shape) elements (`TENSOR_DTYPE` /
 * `TENSOR_SHAPE` otherwise). Guards against hand-built objects whose data and shape disagree.
 */
function checkWellFormed(name: string, t: unknown): asserts t is HostTensor {
  if (typeof t !== 'object' || t === null || !('dtype' in t) || !('shape' in t) || !('data' in t)) {
    const actual = t === null ? 'null' : ArrayBuffer.isView(t) ? (t as object).constructor.name : typeof t;
    throw new TensorError('TENSOR_DTYPE', name, 'not a host tensor', '{dtype, shape, data}', actual);
  }
  const { dtype, shape, data } = t as HostTensor;
  hostTensor(dtype, shape, data, name);
}

/** At least one row and one column where the model needs them (`TENSOR_SHAPE` naming the axis). */
function checkNonEmpty(name: string, t: HostTensor, axes: readonly [number, string][]): void {
  for (const [axis, label] of axes) {
    if ((t.shape[axis] ?? 0) < 1) {
      throw new TensorError(
        'TENSOR_SHAPE',
        name,
        `empty ${label} (axis ${axis} of shape ${fmtShape(t.shape)})`,
        `${label} >= 1`,
        String(t.shape[axis]),
      );
    }
  }
}

/** Position `[i, j, ...]` of flat index `flat` in `shape`. */
function position(shape: readonly number[], flat: number): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    idx.unshift(flat % n);
    flat = Math.floor(flat / n);
  }
  return fmtShape(idx);
}

/** Every value of a float tensor is finite (`TENSOR_VALUE` naming the first NaN/Inf and where). */
function checkFinite(name: string, t: HostTensor): void {
  const fail = (i: number, v: string) => {
    throw new TensorError(
      'TENSOR_VALUE',
      name,
      'values must be finite',
      'finite numbers',
      `${v} at ${position(t.shape, i)}`,
    );
  };
  if (t.dtype === 'F32' || t.dtype === 'F64') {
    const d = t.data as Float32Array | Float64Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) fail(i, String(d[i]));
  } else if (t.dtype === 'F16' || t.dtype === 'BF16') {
    // all-ones exponent: Inf (zero mantissa) or NaN
    const [exp, man] = t.dtype === 'F16' ? [0x7c00, 0x03ff] : [0x7f80, 0x007f];
    const d = t.data as Uint16Array;
    for (let i = 0; i < d.length; i++) {
      if ((d[i]! & exp) === exp)
        fail(i, (d[i]! & man) !== 0 ? 'NaN' : d[i]! & 0x8000 ? '-Infinity' : 'Infinity');
    }
  }
}

function checkBinary(name: string, t: HostTensor): void {
  const data = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v !== 0 && v !== 1 && v !== 0n && v !== 1n) {
      throw new TensorError('TENSOR_VALUE', name, 'mask values must be 0 or 1', '0 | 1', String(v));
    }
  }
}

/** Options of {@link validateQFormerInputs}. */
export interface ValidateOptions {
  /**
   * The inputs are for the ITM pass only: both `image_embeds` and `input_ids` are required, and an
   * image batch of 1 may be paired with any text batch.
   */
  readonly itmOnly?: boolean;
}

/**
 * Checks named Q-Former inputs against the model and works out which graph they call for: names,
 * well-formed tensors (data length matches the shape), dtypes, ranks and shapes, non-empty batch,
 * image tokens and text, finite image features, token ids inside the vocabulary, text no longer than
 * `max_position_embeddings`, 0/1 masks, and one batch size across images and text. Errors are
 * TensorError naming the input, with expected vs actual.
 */
export function validateQFormerInputs(
  spec: QFormerModelSpec,
  inputs: Record<string, HostTensor>,
  options: ValidateOptions = {},
): QFormerGraphOptions {
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    throw new TensorError(
      'TENSOR_MISSING',
      'inputs',
      'expected a record of named tensors',
      `{ ${KNOWN.join(', ')} }`,
      inputs === null ? 'null' : Array.isArray(inputs) ? 'an array' : typeof inputs,
    );
  }
  for (const name of Object.keys(inputs)) {
    if (!(KNOWN as readonly string[]).includes(name)) {
      throw new TensorError('TENSOR_UNEXPECTED', name, `unknown input; expected one of ${KNOWN.join(', ')}`);
    }
    // an input given as undefined counts as absent
    if (inputs[name] !== undefined) checkWellFormed(name, inputs[name]);
  }
  const cfg = spec.qformer;
  const image = inputs['image_embeds'];
  const imageMask = inputs['image_attention_mask'];
  const ids = inputs['input_ids'];
  const textMask = inputs['attention_mask'];
  if (!image && !ids) {
    // name the one the caller meant to pass (encodeText passes input_ids, maybe undefined)
    const name = 'input_ids' in inputs && !('image_embeds' in inputs) ? 'input_ids' : 'image_embeds';
    throw new TensorError('TENSOR_MISSING', name, 'give image_embeds, input_ids, or both');
  }
  if (options.itmOnly && !image)
    throw new TensorError('TENSOR_MISSING', 'image_embeds', 'the ITM pass needs image_embeds');
  if (options.itmOnly && !ids)
    throw new TensorError('TENSOR_MISSING', 'input_ids', 'the ITM pass needs input_ids');

  let batch: number | undefined;
  if (image) {
    checkDType('image_embeds', image, FLOAT);
    checkShape('image_embeds', image, ['B', 'N', cfg.encoderHiddenSize]);
    checkNonEmpty('image_embeds', image, [
      [0, 'batch'],
      [1, 'image tokens'],
    ]);
    checkFinite('image_embeds', image);
    batch = image.shape[0];
  }
  if (imageMask) {
    if (!image)
      throw new TensorError('TENSOR_MISSING', 'image_embeds', 'image_attention_mask needs image_embeds');
    checkDType('image_attention_mask', imageMask, MASK);
    checkShape('image_attention_mask', imageMask, [batch ?? 'B', image.shape[1] ?? 'N']);
    checkBinary('image_attention_mask', imageMask);
  }
  if (ids) {
    if (!spec.textPath) {
      throw new TensorError(
        'TENSOR_UNEXPECTED',
        'input_ids',
        'this checkpoint has no Q-Former text path (no word embeddings or text FFN)',
      );
    }
    checkDType('input_ids', ids, INT);
    // In the ITM pass one image (batch 1) is paired with every text.
    const sharedImage = options.itmOnly && batch === 1;
    if (batch !== undefined && !sharedImage && ids.shape.length === 2 && ids.shape[0] !== batch) {
      throw new TensorError(
        'TENSOR_SHAPE',
        'input_ids',
        `batch size differs from image_embeds (${batch} images, ${ids.shape[0]} texts)`,
        `[${batch}, T]`,
        fmtShape(ids.shape),
      );
    }
    checkShape('input_ids', ids, [sharedImage ? 'B' : (batch ?? 'B'), 'T']);
    checkNonEmpty('input_ids', ids, [[0, 'batch']]);
    const t = ids.shape[1] ?? 0;
    if (t < 1 || t > cfg.maxPositionEmbeddings) {
      throw new TensorError(
        'TENSOR_SHAPE',
        'input_ids',
        `text length out of range (max_position_embeddings ${cfg.maxPositionEmbeddings})`,
        `1..${cfg.maxPositionEmbeddings}`,
        String(t),
      );
    }
    const values = toInt32(ids, 'input_ids');
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < 0 || v >= cfg.vocabSize) {
        throw new TensorError(
          'TENSOR_VALUE',
          'input_ids',
          `token id out of range (vocab_size ${cfg.vocabSize})`,
          `0..${cfg.vocabSize - 1}`,
          `${v} at ${position(ids.shape, i)}`,
        );
      }
    }
  }
  if (textMask) {
    if (!ids) throw new TensorError('TENSOR_MISSING', 'input_ids', 'attention_mask needs input_ids');
    checkDType('attention_mask', textMask, MASK);
    checkShape('attention_mask', textMask, ids.shape);
    checkBinary('attention_mask', textMask);
  }
  return { image: !!image, imageMask: !!imageMask, text: !!ids, textMask: !!textMask };
}
