import { validateVisionInputs } from '@qf/core';
import {
  type Blip2Config,
  type DType,
  type HostTensor,
  TensorError,
  fmtShape,
  hostTensor,
  toInt32,
} from '@qf/io';
import { IGNORE_INDEX } from '../soft-prompt.js';

/** Named inputs of `Blip2Model.forward` / `generate` (HF argument names). */
export interface Blip2Inputs {
  /** float [B, 3, S, S]: preprocessed images (`preprocessImages`). */
  readonly pixel_values: HostTensor;
  /** int [B, T]: LM prompt (decoder-only: prompt + text) ids. */
  readonly input_ids?: HostTensor | undefined;
  /** 0/1 [B, T] for `input_ids` (default all ones). */
  readonly attention_mask?: HostTensor | undefined;
  /** InstructBLIP only, required there: int [B, Tq] Q-Former (BERT) ids of the instruction. */
  readonly qformer_input_ids?: HostTensor | undefined;
  /** InstructBLIP: 0/1 [B, Tq] (default all ones). */
  readonly qformer_attention_mask?: HostTensor | undefined;
  /** int [B, L]: decoder-only: aligned with the last L of the Q + T positions, shifted (HF); T5: decoder targets. -100 = ignore. */
  readonly labels?: HostTensor | undefined;
  /** T5 only: int [B, L] decoder inputs (default: `labels` shifted right). */
  readonly decoder_input_ids?: HostTensor | undefined;
}

/** What the validation found out. */
export interface CheckedInputs {
  readonly batch: number;
  /** T (0 without `input_ids`). */
  readonly textLength: number;
}

const INT: readonly DType[] = ['I64', 'I32'];
const MASK: readonly DType[] = ['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F32'];
const KNOWN = [
  'pixel_values',
  'input_ids',
  'attention_mask',
  'qformer_input_ids',
  'qformer_attention_mask',
  'labels',
  'decoder_input_ids',
] as const;

function wellFormed(name: string, t: unknown): HostTensor {
  if (typeof t !== 'object' || t === null || !('dtype' in t) || !('shape' in t) || !('data' in t))
    throw new TensorError('TENSOR_DTYPE', name, 'not a host tensor', '{dtype, shape, data}', typeof t);
  const { dtype, shape, data } = t as HostTensor;
  return hostTensor(dtype, shape, data, name);
}

function dtypeOf(name: string, t: HostTensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype))
    throw new TensorError('TENSOR_DTYPE', name, 'unsupported dtype', allowed.join(' | '), t.dtype);
}

/** int [batch, T] with T in 1..maxLength; values in 0..vocab-1 (or -100 when `ignore`). */
function idMatrix(
  name: string,
  t: HostTensor,
  batch: number,
  o: { vocab: number; maxLength?: number | undefined; ignore?: boolean; batchOf: string },
): number {
  dtypeOf(name, t, INT);
  if (t.shape.length !== 2)
    throw new TensorError('TENSOR_SHAPE', name, 'must be [B, T]', `[${batch}, T]`, fmtShape(t.shape));
  if (t.shape[0] !== batch)
    throw new TensorError(
      'TENSOR_SHAPE',
      name,
      `batch size differs from ${o.batchOf} (${batch} images, ${t.shape[0]} rows)`,
      `[${batch}, T]`,
      fmtShape(t.shape),
    );
  const len = t.shape[1] as number;
  if (len < 1 || (o.maxLength !== undefined && len > o.maxLength))
    throw new TensorError(
      'TENSOR_SHAPE',
      name,
      'length out of range',
      `[${batch}, 1..${o.maxLength ?? 'any'}]`,
      fmtShape(t.shape),
    );
  const v = toInt32(t, name);
  for (let i = 0; i < v.length; i++) {
    const id = v[i] as number;
    if ((id >= 0 && id < o.vocab) || (o.ignore && id === IGNORE_INDEX)) continue;
    throw new TensorError(
      'TENSOR_VALUE',
      name,
      `id out of range at [${Math.floor(i / len)}, ${i % len}]`,
      `0..${o.vocab - 1}${o.ignore ? ' or -100' : ''}`,
      String(id),
    );
  }
  return len;
}

function binaryMask(name: string, t: HostTensor, like: HostTensor, likeName: string): void {
  dtypeOf(name, t, MASK);
  if (t.shape.length !== 2 || t.shape[0] !== like.shape[0] || t.shape[1] !== like.shape[1])
    throw new TensorError(
      'TENSOR_SHAPE',
      name,
      `must match ${likeName}`,
      fmtShape(like.shape),
      fmtShape(t.shape),
    );
  const d = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < d.length; i++) {
    const x = d[i];
    if (x !== 0 && x !== 1 && x !== 0n && x !== 1n)
      throw new TensorError('TENSOR_VALUE', name, 'mask values must be 0 or 1', '0 | 1', String(x));
  }
}

/**
 * Checks the inputs of a whole BLIP-2 / InstructBLIP model: known names only, `pixel_values` as the
 * vision tower wants it, every text tensor [B, ...] with the image batch B, ids inside their
 * vocabularies, 0/1 masks shaped like their ids, InstructBLIP's required `qformer_input_ids` (HF
 * builds `ones_like(qformer_input_ids)` and fails without them), and the inputs that only one kind
 * of model reads (`qformer_*` for InstructBLIP, `decoder_input_ids` for T5).
 * @throws TensorError naming the input, with expected vs actual
 */
export function validateBlip2Inputs(
  config: Blip2Config,
  lm: { readonly kind: 'decoder-only' | 'encoder-decoder'; readonly shape: { readonly vocabSize: number } },
  raw: Blip2Inputs | Record<string, HostTensor | undefined>,
): CheckedInputs {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new TensorError(
      'TENSOR_MISSING',
      'inputs',
      'expected a record of named tensors',
      `{ ${KNOWN.join(', ')} }`,
      String(raw),
    );
  const inputs: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(raw)) {
    if (!(KNOWN as readonly string[]).includes(name))
      throw new TensorError('TENSOR_UNEXPECTED', name, `unknown input; expected one of ${KNOWN.join(', ')}`);
    if (t !== undefined) inputs[name] = wellFormed(name, t);
  }
  const px = inputs['pixel_values'];
  if (!px)
    throw new TensorError('TENSOR_MISSING', 'pixel_values', 'a BLIP-2 model needs pixel_values [B, 3, S, S]');
  validateVisionInputs(config.vision, { pixel_values: px });
  const batch = px.shape[0] as number;
  const instruct = config.modelType === 'instructblip';
  const vocab = lm.shape.vocabSize;

  const qids = inputs['qformer_input_ids'];
  const qmask = inputs['qformer_attention_mask'];
  if (!instruct && (qids || qmask))
    throw new TensorError(
      'TENSOR_UNEXPECTED',
      qids ? 'qformer_input_ids' : 'qformer_attention_mask',
      "BLIP-2's Q-Former reads no text; only InstructBLIP takes an instruction",
    );
  if (instruct) {
    if (!qids)
      throw new TensorError(
        'TENSOR_MISSING',
        'qformer_input_ids',
        'InstructBLIP needs the instruction ids for its Q-Former (HF fails without them too)',
        `[${batch}, T]`,
        'absent',
      );
    const q = config.qformer;
    idMatrix('qformer_input_ids', qids, batch, {
      vocab: q.vocabSize,
      maxLength: q.maxPositionEmbeddings,
      batchOf: 'pixel_values',
    });
    if (qmask) binaryMask('qformer_attention_mask', qmask, qids, 'qformer_input_ids');
  }

  const ids = inputs['input_ids'];
  const mask = inputs['attention_mask'];
  let textLength = 0;
  if (ids) {
    textLength = idMatrix('input_ids', ids, batch, { vocab, batchOf: 'pixel_values' });
    const image = config.imageTokenIndex;
    if (image !== null && toInt32(ids, 'input_ids').includes(image))
      throw new TensorError(
        'TENSOR_VALUE',
        'input_ids',
        `holds image_token_index ${image}: only the concatenation flow is supported, pass the text ids without image tokens`,
      );
  }
  if (mask) {
    if (!ids) throw new TensorError('TENSOR_MISSING', 'input_ids', 'attention_mask needs input_ids');
    binaryMask('attention_mask', mask, ids, 'input_ids');
  }
  const labels = inputs['labels'];
  const decoderIds = inputs['decoder_input_ids'];
  if (lm.kind === 'decoder-only') {
    if (decoderIds)
      throw new TensorError(
        'TENSOR_UNEXPECTED',
        'decoder_input_ids',
        'a decoder-only LM has no decoder inputs',
      );
    if (labels) {
      if (!ids)
        throw new TensorError('TENSOR_MISSING', 'input_ids', 'labels of a decoder-only LM need input_ids');
      const q = config.numQueryTokens;
      idMatrix('labels', labels, batch, {
        vocab,
        maxLength: q + textLength,
        ignore: true,
        batchOf: 'pixel_values',
      });
    }
  } else {
    if (labels) idMatrix('labels', labels, batch, { vocab, ignore: true, batchOf: 'pixel_values' });
    if (decoderIds) {
      const len = idMatrix('decoder_input_ids', decoderIds, batch, { vocab, batchOf: 'pixel_values' });
      if (labels && labels.shape[1] !== len)
        throw new TensorError(
          'TENSOR_SHAPE',
          'labels',
          'must match decoder_input_ids',
          fmtShape(decoderIds.shape),
          fmtShape(labels.shape),
        );
    }
  }
  return { batch, textLength };
}

/**
 * HF T5 `_shift_right`: `[decoder_start] + labels[:, :-1]`, with -100 replaced by `pad`.
 * @returns int32 [B, L]
 */
export function shiftRight(labels: HostTensor, decoderStart: number, pad: number): HostTensor<'I32'> {
  const [b, l] = labels.shape as [number, number];
  const y = toInt32(labels, 'labels');
  const out = new Int32Array(b * l);
  for (let r = 0; r < b; r++) {
    out[r * l] = decoderStart;
    for (let j = 1; j < l; j++) {
      const v = y[r * l + j - 1] as number;
      out[r * l + j] = v === IGNORE_INDEX ? pad : v;
    }
  }
  return { dtype: 'I32', shape: [b, l], data: out };
}
