import { type QFormerModelSpec, itgTextKeep } from '@qf/core';
import { type HostTensor, TensorError, fmtShape, toFloat32, toInt32 } from '@qf/io';
import { prepareCrossEntropyTargets } from '@qf/core';
import { LossError } from './errors.js';

/** One stage-1 batch on the host: B image-text pairs (sample b = image b with text b). */
export interface Stage1Batch {
  /** [B, N, encoder_hidden_size] frozen image features (ViT + ln_vision output), float. */
  readonly imageEmbeds: HostTensor;
  /** [B, T] token ids ([CLS] ... [SEP] then padding), any integer dtype. */
  readonly inputIds: HostTensor;
  /** [B, T] 1 = real token, 0 = padding. */
  readonly attentionMask: HostTensor;
  /**
   * [B] image ids (LAVIS `samples["image_id"]`, the COCO-retrieval path): samples with equal ids are
   * positives for ITC and never drawn as ITM negatives. Omitted: only the diagonal is positive.
   */
  readonly imageId?: HostTensor | readonly number[] | undefined;
}

/** The hard negatives of one batch (LAVIS draws them with `torch.multinomial`). */
export interface Stage1Negatives {
  /** [B] for each text b, the index of its negative image. */
  readonly negImageIdx: Int32Array;
  /** [B] for each image b, the index of its negative text. */
  readonly negTextIdx: Int32Array;
}

/** Token ids and smoothing of the stage-1 objectives. */
export interface Stage1TextOptions {
  /** The [DEC] id that replaces position 0 for ITG (LAVIS `tokenizer.bos_token_id`). */
  readonly decoderBosId: number;
  /** Padding id: ITG labels are -100 where the decoder input equals it (default 0). */
  readonly padTokenId?: number;
  /** ITC label smoothing (default 0.1); ITG's is an option of the loss graph. */
  readonly itcLabelSmoothing?: number;
}

/**
 * Names of the graph inputs of the stage-1 loss (see {@link prepareStage1Inputs}); every
 * batch-dependent value is an input, so a tracing backend can cache one graph for every batch.
 */
export type Stage1InputName =
  | 'image_embeds'
  | 'input_ids'
  | 'attention_mask'
  | 'itc_targets'
  | 'itc_positive'
  | 'neg_image_idx'
  | 'itm_input_ids'
  | 'itm_attention_mask'
  | 'itm_target_index'
  | 'lm_input_ids'
  | 'lm_keep'
  | 'lm_target_index'
  | 'lm_target_weight';

/** The host tensors of {@link prepareStage1Inputs}, ready for `Backend.run` / `valueAndGrad`. */
export type Stage1Inputs = Record<string, HostTensor> & Partial<Record<Stage1InputName, HostTensor>>;

interface BatchDims {
  readonly b: number;
  readonly t: number;
  readonly ids: Int32Array;
  readonly mask: Int32Array;
}

/** Checks a batch's shapes against the model; returns its sizes and host ids/mask. */
export function checkStage1Batch(spec: QFormerModelSpec, batch: Stage1Batch): BatchDims {
  const img = batch.imageEmbeds.shape;
  const e = spec.qformer.encoderHiddenSize;
  if (img.length !== 3 || img[2] !== e)
    throw new TensorError(
      'TENSOR_SHAPE',
      'imageEmbeds',
      'must be [B, N, encoder_hidden_size]',
      `[B, N, ${e}]`,
      fmtShape(img),
    );
  const b = img[0] as number;
  const ids = batch.inputIds.shape;
  if (ids.length !== 2 || ids[0] !== b)
    throw new TensorError(
      'TENSOR_SHAPE',
      'inputIds',
      "must be [B, T] with the images' B",
      `[${b}, T]`,
      fmtShape(ids),
    );
  const t = ids[1] as number;
  if (t < 1 || t > spec.qformer.maxPositionEmbeddings)
    throw new TensorError(
      'TENSOR_SHAPE',
      'inputIds',
      `T must be in [1, ${spec.qformer.maxPositionEmbeddings}]`,
      undefined,
      fmtShape(ids),
    );
  const m = batch.attentionMask.shape;
  if (m.length !== 2 || m[0] !== b || m[1] !== t)
    throw new TensorError('TENSOR_SHAPE', 'attentionMask', 'must match inputIds', fmtShape(ids), fmtShape(m));
  const idData = toInt32(batch.inputIds, 'inputIds');
  const v = spec.qformer.vocabSize;
  for (let i = 0; i < idData.length; i++) {
    const id = idData[i] as number;
    if (id < 0 || id >= v)
      throw new TensorError('TENSOR_VALUE', 'inputIds', `id ${id} at flat index ${i} outside [0, ${v})`);
  }
  const maskData = toInt32(batch.attentionMask, 'attentionMask');
  if (batch.imageId !== undefined && imageIds(batch.imageId).length !== b)
    throw new TensorError(
      'TENSOR_SHAPE',
      'imageId',
      'must have one id per sample',
      `[${b}]`,
      `[${imageIds(batch.imageId).length}]`,
    );
  return { b, t, ids: idData, mask: maskData };
}

function imageIds(ids: HostTensor | readonly number[]): readonly number[] {
  if (Array.isArray(ids)) return ids;
  const t = ids as HostTensor;
  return t.dtype === 'I64' ? Array.from(t.data as BigInt64Array, (v) => Number(v)) : Array.from(toFloat32(t));
}

/**
 * Which pairs are positives: `pos[i, j] = 1` when image i and text j belong together — the
 * diagonal, or equal `imageId`s (LAVIS `image_ids == image_ids_all.t()`).
 * @returns F32 [B, B]
 */
export function stage1Positives(b: number, imageId?: HostTensor | readonly number[]): HostTensor<'F32'> {
  const ids = imageId === undefined ? undefined : imageIds(imageId);
  const pos = new Float32Array(b * b);
  for (let i = 0; i < b; i++)
    for (let j = 0; j < b; j++) pos[i * b + j] = i === j || (ids !== undefined && ids[i] === ids[j]) ? 1 : 0;
  return { dtype: 'F32', shape: [b, b], data: pos };
}

/**
 * ITC soft targets: `(1 - e) * pos / pos.sum(1) + e / B`. With only the diagonal positive this is
 * PyTorch's label smoothing of `arange(B)`, so the no-image-id loss (`F.cross_entropy(sim, arange,
 * label_smoothing=e)`) and LAVIS's image-id loss (`-sum(log_softmax(sim) * sim_targets)`) are the
 * same formula.
 * @returns F32 [B, B]
 */
export function itcTargets(positives: HostTensor, labelSmoothing = 0.1): HostTensor<'F32'> {
  const [b] = positives.shape as [number, number];
  const pos = toFloat32(positives);
  const out = new Float32Array(b * b);
  for (let i = 0; i < b; i++) {
    let rowSum = 0;
    for (let j = 0; j < b; j++) rowSum += pos[i * b + j] as number;
    for (let j = 0; j < b; j++)
      out[i * b + j] = ((1 - labelSmoothing) * (pos[i * b + j] as number)) / rowSum + labelSmoothing / b;
  }
  return { dtype: 'F32', shape: [b, b], data: out };
}

function checkNegatives(b: number, negatives: Stage1Negatives): void {
  for (const [name, idx] of [
    ['negImageIdx', negatives.negImageIdx],
    ['negTextIdx', negatives.negTextIdx],
  ] as const) {
    if (idx.length !== b)
      throw new LossError('LOSS_INPUT', `${name} has ${idx.length} entries, expected one per sample (${b})`);
    for (const v of idx)
      if (!(Number.isInteger(v) && v >= 0 && v < b))
        throw new LossError('LOSS_INPUT', `${name}: index ${v} outside [0, ${b})`);
  }
}

/** Which parts of the stage-1 inputs to prepare. */
export interface PrepareStage1Options extends Stage1TextOptions {
  /** Prepare the ITM inputs (needs `negatives`; default: when negatives are given). */
  readonly itm?: boolean;
  /** Prepare the ITG inputs (default true). */
  readonly itg?: boolean;
}

/**
 * Everything the stage-1 loss graph reads, as host tensors: the batch itself plus what LAVIS derives
 * from it on the host — ITC targets and positives, the ITM batch `[pos; (neg image, text); (image,
 * neg text)]` (text side; the negative images are gathered in the graph by `neg_image_idx`) and its
 * labels `[1]*B + [0]*2B`, and the ITG decoder ids (position 0 -> [DEC]), mask and shifted labels
 * (pads -> -100).
 */
export function prepareStage1Inputs(
  spec: QFormerModelSpec,
  batch: Stage1Batch,
  options: PrepareStage1Options,
  negatives?: Stage1Negatives,
): Stage1Inputs {
  const { b, t, ids, mask } = checkStage1Batch(spec, batch);
  const q = spec.numQueryTokens;
  const positives = stage1Positives(b, batch.imageId);
  const out: Stage1Inputs = {
    image_embeds: batch.imageEmbeds,
    input_ids: { dtype: 'I32', shape: [b, t], data: ids },
    attention_mask: { dtype: 'I32', shape: [b, t], data: mask },
    itc_targets: itcTargets(positives, options.itcLabelSmoothing ?? 0.1),
    itc_positive: positives,
  };
  if (options.itm ?? negatives !== undefined) {
    if (!negatives) throw new LossError('LOSS_INPUT', 'the ITM inputs need the hard negatives');
    checkNegatives(b, negatives);
    const itmIds = new Int32Array(3 * b * t);
    const itmMask = new Int32Array(3 * b * t);
    for (let r = 0; r < 3 * b; r++) {
      const src = r < 2 * b ? r % b : (negatives.negTextIdx[r - 2 * b] as number);
      itmIds.set(ids.subarray(src * t, (src + 1) * t), r * t);
      itmMask.set(mask.subarray(src * t, (src + 1) * t), r * t);
    }
    out.neg_image_idx = { dtype: 'I32', shape: [b], data: Int32Array.from(negatives.negImageIdx) };
    out.itm_input_ids = { dtype: 'I32', shape: [3 * b, t], data: itmIds };
    out.itm_attention_mask = { dtype: 'I32', shape: [3 * b, t], data: itmMask };
    out.itm_target_index = prepareCrossEntropyTargets(
      Array.from({ length: 3 * b }, (_, r) => (r < b ? 1 : 0)),
      2,
    ).index;
  }
  if (options.itg ?? true) {
    const pad = options.padTokenId ?? 0;
    const bos = options.decoderBosId;
    if (!(Number.isInteger(bos) && bos >= 0 && bos < spec.qformer.vocabSize))
      throw new LossError('LOSS_INPUT', `decoderBosId ${bos} outside [0, ${spec.qformer.vocabSize})`);
    const dec = Int32Array.from(ids);
    for (let i = 0; i < b; i++) dec[i * t] = bos;
    // labels[:, 1:] against logits[:, :-1]; the last position predicts nothing.
    const shifted = new Int32Array(b * t).fill(-100);
    for (let i = 0; i < b; i++)
      for (let j = 0; j + 1 < t; j++) {
        const next = dec[i * t + j + 1] as number;
        shifted[i * t + j] = next === pad ? -100 : next;
      }
    const targets = prepareCrossEntropyTargets(shifted, spec.qformer.vocabSize);
    out.lm_input_ids = { dtype: 'I32', shape: [b, t], data: dec };
    out.lm_keep = itgTextKeep(q, { dtype: 'I32', shape: [b, t], data: mask });
    out.lm_target_index = targets.index;
    out.lm_target_weight = targets.weight;
  }
  return out;
}

/** The ITG labels LAVIS builds (`decoder_input_ids` with pads -> -100), I32 [B, T], for inspection. */
export function itgLabels(batch: Stage1Batch, options: Stage1TextOptions): HostTensor<'I32'> {
  const [b, t] = batch.inputIds.shape as [number, number];
  const ids = toInt32(batch.inputIds, 'inputIds');
  const pad = options.padTokenId ?? 0;
  const out = new Int32Array(b * t);
  for (let i = 0; i < b * t; i++) {
    const id = i % t === 0 ? options.decoderBosId : (ids[i] as number);
    out[i] = id === pad ? -100 : id;
  }
  return { dtype: 'I32', shape: [b, t], data: out };
}
