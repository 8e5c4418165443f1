import {
  IGNORE_INDEX,
  type OptLanguageModel,
  type T5LanguageModel,
  causalLmTargets,
  crossEntropyLoss,
  decoderOnlyLabels,
  optPositionIds,
  seq2seqTargets,
  softPromptInputs,
  softPromptMask,
} from '@qf/bridge';
import {
  type Backend,
  type LossFn,
  type Ops,
  type ParamStore,
  type QFormerModelSpec,
  type Rng,
  languageProjection,
  qformerEncoder,
  qformerParamSpecs,
  queryTokens,
} from '@qf/core';
import { type HostTensor, TensorError, fmtShape, toInt32 } from '@qf/io';
import { TrainError } from '../errors.js';
import { type StepGrads, Trainer, type TrainerOptions } from './base.js';

/** One stage-2 batch on the host. */
export interface Stage2Batch {
  /** [B, N, encoder_hidden_size] frozen image features. */
  readonly imageEmbeds: HostTensor;
  /**
   * Decoder-only LM: prompt + caption ids [B, T] (right padded, BOS first as OPT's tokenizer adds it).
   * Encoder-decoder LM: the encoder text after the soft prompt (the prompt / prefix) [B, S].
   */
  readonly inputIds: HostTensor;
  /** [B, T] (or [B, S]) 1 = token, 0 = padding. */
  readonly attentionMask: HostTensor;
  /** Decoder-only: leading tokens per row not scored (BOS + prompt, as LAVIS counts them). Default 1. */
  readonly promptLength?: number | readonly number[];
  /** Encoder-decoder: target ids [B, L] (the caption, EOS included) and their mask. */
  readonly targetIds?: HostTensor;
  readonly targetMask?: HostTensor;
}

/** Options of {@link Stage2Trainer}. */
export interface Stage2TrainerOptions<T> extends TrainerOptions<T, Stage2Batch> {
  /** The Q-Former model (must have `languageProjection`). */
  readonly spec: QFormerModelSpec;
  /** The frozen LM, its parameters in `params` under its prefix (`language_model.` by default). */
  readonly lm: OptLanguageModel | T5LanguageModel;
  /**
   * What to train. Default: the Q-Former's query path (query tokens, embedding LayerNorm, attention,
   * cross-attention, `*_query` FFNs) and `language_projection`, as LAVIS's `Blip2OPT` / `Blip2T5`
   * (text path and retrieval heads are unused in stage 2 and stay untouched).
   */
  readonly trainable?: readonly string[];
}

/**
 * BLIP-2 stage 2 (generative learning): frozen image features -> Q-Former query pass ->
 * `language_projection` -> soft prompt in front of the frozen LM's input embeddings (`@qf/bridge`
 * `softPromptInputs`) -> `lm.forward` (OPT or T5) -> LM cross-entropy (`crossEntropyLoss` with
 * `causalLmTargets` of `decoderOnlyLabels`, or `seq2seqTargets`), HF BLIP-2's loss. The LM's
 * parameters receive no update.
 */
export class Stage2Trainer<T> extends Trainer<T, Stage2Batch> {
  readonly stage = 'stage2';
  readonly spec: QFormerModelSpec;
  readonly lm: OptLanguageModel | T5LanguageModel;
  private readonly lossFn: LossFn<T>;

  /** @throws TrainError `TRAIN_OPTIONS` when the spec has no language projection or widths differ */
  constructor(backend: Backend<T>, options: Stage2TrainerOptions<T>) {
    const spec = options.spec;
    if (!spec.languageProjection)
      throw new TrainError('TRAIN_OPTIONS', 'stage 2 needs a Q-Former spec with languageProjection');
    if (spec.languageProjection.outFeatures !== options.lm.shape.hiddenSize)
      throw new TrainError(
        'TRAIN_OPTIONS',
        `language_projection width ${spec.languageProjection.outFeatures} differs from the LM's input width ${options.lm.shape.hiddenSize}`,
      );
    const trainable =
      options.trainable ??
      qformerParamSpecs({ ...spec, textPath: false, retrievalHeads: undefined }).map((p) => p.name);
    super(backend, trainable, options);
    this.spec = spec;
    this.lm = options.lm;
    this.lossFn = stage2Loss(spec, options.lm);
  }

  protected async computeGrads(batch: Stage2Batch, _rng: Rng): Promise<StepGrads<T>> {
    const inputs = prepareStage2Inputs(this.spec, this.lm, batch);
    const r = await this.backend.valueAndGrad(this.lossFn, this.params, this.trainable, inputs);
    return { loss: r.loss, parts: { loss_lm: r.loss }, grads: r.grads };
  }

  protected settings(): Record<string, unknown> {
    return { lm: this.lm.kind, lmType: this.lm.modelType };
  }
}

/** The soft prompt `language_projection(Q-Former query pass)` [B, Q, lmHidden]. */
export function softPromptGraph<T>(
  ops: Ops<T>,
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  imageEmbeds: T,
): T {
  const pass = qformerEncoder(ops, spec.qformer, params, {
    queries: queryTokens(ops, params, imageEmbeds),
    queryLength: spec.numQueryTokens,
    image: { embeds: imageEmbeds, mask: undefined },
  });
  return languageProjection(ops, params, pass.lastHiddenState);
}

/** The stage-2 loss as a `LossFn` (graph inputs from {@link prepareStage2Inputs}). */
export function stage2Loss<T>(spec: QFormerModelSpec, lm: OptLanguageModel | T5LanguageModel): LossFn<T> {
  return (ops, params, inputs) => {
    const get = (name: string): T => {
      const t = inputs[name];
      if (t === undefined) throw new TensorError('TENSOR_MISSING', name, 'stage-2 graph input');
      return t;
    };
    const soft = softPromptGraph(ops, spec, params, get('image_embeds'));
    const enc = softPromptInputs(ops, lm, params, soft, get('input_ids'), get('attention_mask'));
    const logits =
      lm.kind === 'decoder-only'
        ? lm.forward(ops, params, { ...enc, positionIds: get('position_ids') }).logits
        : lm.forward(ops, params, { ...enc, decoderInputIds: get('decoder_input_ids') }).logits;
    return { loss: crossEntropyLoss(ops, logits, get('target_index'), get('target_weight')) };
  };
}

/**
 * Host-side inputs of {@link stage2Loss}: the ids and masks, OPT position ids over `[Q + T]` (HF's
 * `forward` formula), T5 `decoder_input_ids` (labels shifted right from `decoder_start_token_id`,
 * -100 -> pad), and the cross-entropy targets.
 * @throws TensorError naming a malformed batch tensor
 */
export function prepareStage2Inputs(
  spec: QFormerModelSpec,
  lm: OptLanguageModel | T5LanguageModel,
  batch: Stage2Batch,
): Record<string, HostTensor> {
  const img = batch.imageEmbeds.shape;
  if (img.length !== 3 || img[2] !== spec.qformer.encoderHiddenSize)
    throw new TensorError(
      'TENSOR_SHAPE',
      'imageEmbeds',
      'must be [B, N, encoder_hidden_size]',
      `[B, N, ${spec.qformer.encoderHiddenSize}]`,
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
  const q = spec.numQueryTokens;
  const vocab = lm.shape.vocabSize;
  const inputIds: HostTensor = { dtype: 'I32', shape: [...ids], data: toInt32(batch.inputIds, 'inputIds') };
  const mask: HostTensor = {
    dtype: 'I32',
    shape: [...batch.attentionMask.shape],
    data: toInt32(batch.attentionMask, 'attentionMask'),
  };
  const base = { image_embeds: batch.imageEmbeds, input_ids: inputIds, attention_mask: mask };
  if (lm.kind === 'decoder-only') {
    const labels = decoderOnlyLabels(inputIds, mask, { promptLength: batch.promptLength ?? 1 });
    const t = causalLmTargets(labels, q + (ids[1] as number), vocab);
    return {
      ...base,
      position_ids: optPositionIds(softPromptMask(q, mask), 'forward'),
      target_index: t.index,
      target_weight: t.weight,
    };
  }
  if (!batch.targetIds || !batch.targetMask)
    throw new TensorError(
      'TENSOR_MISSING',
      'targetIds',
      'an encoder-decoder LM needs targetIds and targetMask',
    );
  const [tb, l] = batch.targetIds.shape as [number, number];
  if (batch.targetIds.shape.length !== 2 || tb !== b)
    throw new TensorError(
      'TENSOR_SHAPE',
      'targetIds',
      'must be [B, L]',
      `[${b}, L]`,
      fmtShape(batch.targetIds.shape),
    );
  const y = toInt32(batch.targetIds, 'targetIds');
  const m = toInt32(batch.targetMask, 'targetMask');
  if (m.length !== y.length)
    throw new TensorError(
      'TENSOR_SHAPE',
      'targetMask',
      'must match targetIds',
      fmtShape([b, l]),
      fmtShape(batch.targetMask.shape),
    );
  const labels = y.map((v, i) => (m[i] ? v : IGNORE_INDEX));
  const start = lm.tokens.decoderStart ?? 0;
  const pad = lm.tokens.pad ?? 0;
  const decoderIn = new Int32Array(b * l);
  for (let r = 0; r < b; r++)
    for (let j = 0; j < l; j++) {
      const prev = j === 0 ? start : (labels[r * l + j - 1] as number);
      decoderIn[r * l + j] = prev === IGNORE_INDEX ? pad : prev;
    }
  const t = seq2seqTargets({ dtype: 'I32', shape: [b, l], data: labels }, vocab);
  return {
    ...base,
    decoder_input_ids: { dtype: 'I32', shape: [b, l], data: decoderIn },
    target_index: t.index,
    target_weight: t.weight,
  };
}
