import { type DType, type HostTensor, TensorError, fmtShape, toInt32 } from '@qf/io';
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
 * Checks named Q-Former inputs against the model (names, dtypes, shapes, id ranges, mask values) and
 * works out which graph they call for. Errors name the tensor with expected vs actual.
 */
export function validateQFormerInputs(
  spec: QFormerModelSpec,
  inputs: Record<string, HostTensor>,
  options: ValidateOptions = {},
): QFormerGraphOptions {
  for (const name of Object.keys(inputs)) {
    if (!(KNOWN as readonly string[]).includes(name)) {
      throw new TensorError('TENSOR_UNEXPECTED', name, `unknown input; expected one of ${KNOWN.join(', ')}`);
    }
  }
  const cfg = spec.qformer;
  const image = inputs['image_embeds'];
  const imageMask = inputs['image_attention_mask'];
  const ids = inputs['input_ids'];
  const textMask = inputs['attention_mask'];
  if (!image && !ids)
    throw new TensorError('TENSOR_MISSING', 'image_embeds', 'give image_embeds, input_ids, or both');
  if (options.itmOnly && !image)
    throw new TensorError('TENSOR_MISSING', 'image_embeds', 'the ITM pass needs image_embeds');
  if (options.itmOnly && !ids)
    throw new TensorError('TENSOR_MISSING', 'input_ids', 'the ITM pass needs input_ids');

  let batch: number | undefined;
  if (image) {
    checkDType('image_embeds', image, FLOAT);
    checkShape('image_embeds', image, ['B', 'N', cfg.encoderHiddenSize]);
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
    checkShape('input_ids', ids, [sharedImage ? 'B' : (batch ?? 'B'), 'T']);
    const t = ids.shape[1] ?? 0;
    if (t < 1 || t > cfg.maxPositionEmbeddings) {
      throw new TensorError(
        'TENSOR_SHAPE',
        'input_ids',
        'text length out of range',
        `1..${cfg.maxPositionEmbeddings}`,
        String(t),
      );
    }
    const values = toInt32(ids, 'input_ids');
    for (const v of values) {
      if (v < 0 || v >= cfg.vocabSize) {
        throw new TensorError(
          'TENSOR_VALUE',
          'input_ids',
          'token id out of range',
          `0..${cfg.vocabSize - 1}`,
          String(v),
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
