import {
  type GraphFn,
  type Ops,
  type ParamStore,
  type QFormerModelSpec,
  languageProjection,
  qformerGraph,
  visionGraph,
} from '@qf/core';
import { TensorError, type VisionConfig } from '@qf/io';
import { crossEntropyLoss } from '../loss.js';
import type { OptLanguageModel } from '../opt/lm.js';
import { softPromptInputs } from '../soft-prompt.js';
import type { T5LanguageModel } from '../t5/model.js';

/**
 * Graph functions of a whole BLIP-2 / InstructBLIP model (HF `Blip2ForConditionalGeneration`,
 * `InstructBlipForConditionalGeneration`), composed from the `@qf/core` vision tower and Q-Former
 * graphs and the `@qf/bridge` LMs: nothing here re-implements model math. Parameters are one store
 * keyed by canonical (HF BLIP-2) names: `vision_model.*`, `query_tokens`, `qformer.*`,
 * `embeddings.*` (InstructBLIP's Q-Former text embeddings), `language_projection.*`,
 * `language_model.*`.
 */

/** Options of {@link blip2ImageGraph} and {@link blip2QFormerProjectorGraph}. */
export interface Blip2GraphOptions {
  /**
   * InstructBLIP: the Q-Former reads `qformer_input_ids` [B, T] (the instruction) with its queries,
   * bidirectionally, cross-attention on the query rows only; the soft prompt comes from the first Q
   * rows of its output.
   */
  readonly instruct: boolean;
  /** InstructBLIP: also read `qformer_attention_mask` [B, T] (default true; false = no padding). */
  readonly qformerMask?: boolean | undefined;
  /** Also output `qformer_hidden_states.{i}` (and `vision_hidden_states.{i}` in the image graph). */
  readonly hiddenStates?: boolean | undefined;
}

/** Graph input names (as `Backend.run` / the ONNX export see them). */
export const BLIP2_INPUTS = {
  pixelValues: 'pixel_values',
  imageEmbeds: 'image_embeds',
  qformerIds: 'qformer_input_ids',
  qformerMask: 'qformer_attention_mask',
  ids: 'input_ids',
  mask: 'attention_mask',
  positions: 'position_ids',
  decoderIds: 'decoder_input_ids',
  targetIndex: 'target_index',
  targetWeight: 'target_weight',
} as const;

/** A stable key for caching traced graphs of `kind` with these options. */
export function blip2GraphKey(kind: string, o: Blip2GraphOptions, extra = ''): string {
  const mask = o.instruct && (o.qformerMask ?? true);
  return `blip2:${kind}:${+o.instruct}${+mask}${+(o.hiddenStates ?? false)}${extra}`;
}

/**
 * Q-Former + projector from image features: inputs `image_embeds` [B, N, E] (+ `qformer_input_ids`
 * [B, T] and `qformer_attention_mask` [B, T] for InstructBLIP); outputs `query_output` [B, Q, H],
 * `language_projection` [B, Q, D_lm] (the soft prompt), InstructBLIP's whole `qformer_output`
 * [B, Q + T, H] (`query_output` is its first Q rows), and with `hiddenStates`
 * `qformer_hidden_states.{0..L}`. The vision tower is not part of it, so the vision tower
 * (`visionGraph`) and this graph can be exported as separate ONNX graphs.
 * @param spec the Q-Former; InstructBLIP needs its text path (`spec.textPath`)
 */
export function blip2QFormerProjectorGraph<T>(
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  options: Blip2GraphOptions,
): GraphFn<T> {
  const q = spec.numQueryTokens;
  // Heads are applied here, not by the Q-Former graph: the retrieval heads are not part of BLIP-2's
  // generation model, and the projector reads only the first Q rows (InstructBLIP).
  const bare: QFormerModelSpec = { ...spec, retrievalHeads: undefined, languageProjection: undefined };
  const hidden = options.hiddenStates ?? false;
  const useMask = options.qformerMask ?? true;
  const qformer = options.instruct
    ? qformerGraph(bare, params, {
        image: true,
        imageMask: false,
        text: true,
        textMask: useMask,
        hiddenStates: hidden,
        itmOnly: true,
      })
    : qformerGraph(bare, params, {
        image: true,
        imageMask: false,
        text: false,
        textMask: false,
        hiddenStates: hidden,
      });
  const passName = options.instruct ? 'multimodal' : 'query';
  return (ops: Ops<T>, inputs: Record<string, T>) => {
    const imageEmbeds = inputs[BLIP2_INPUTS.imageEmbeds];
    if (imageEmbeds === undefined)
      throw new TensorError('TENSOR_MISSING', BLIP2_INPUTS.imageEmbeds, 'the Q-Former needs image features');
    const feed: Record<string, T> = { image_embeds: imageEmbeds };
    if (options.instruct) {
      const ids = inputs[BLIP2_INPUTS.qformerIds];
      if (ids === undefined)
        throw new TensorError(
          'TENSOR_MISSING',
          BLIP2_INPUTS.qformerIds,
          'InstructBLIP needs the instruction ids',
        );
      feed['input_ids'] = ids;
      const mask = inputs[BLIP2_INPUTS.qformerMask];
      if (useMask && mask !== undefined) feed['attention_mask'] = mask;
    }
    const raw = qformer(ops, feed);
    const out: Record<string, T> = {};
    const full = raw[`${passName}_output`] as T;
    const queryOutput = options.instruct ? ops.slice(full, 1, 0, q) : full;
    if (options.instruct) out['qformer_output'] = full;
    out['query_output'] = queryOutput;
    out['language_projection'] = languageProjection(ops, params, queryOutput);
    if (hidden) {
      const prefix = `${passName}_hidden_states.`;
      for (const [name, t] of Object.entries(raw))
        if (name.startsWith(prefix)) out[`qformer_hidden_states.${name.slice(prefix.length)}`] = t;
    }
    return out;
  };
}

/**
 * Vision tower + Q-Former + projector: input `pixel_values` [B, 3, S, S] (+ `qformer_input_ids`,
 * `qformer_attention_mask` for InstructBLIP); outputs `vision_output` [B, N + 1, E] (the image
 * features) and everything {@link blip2QFormerProjectorGraph} outputs; with `hiddenStates` also
 * `vision_hidden_states.{0..L}`.
 */
export function blip2ImageGraph<T>(
  vision: VisionConfig,
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  options: Blip2GraphOptions,
): GraphFn<T> {
  const tower = visionGraph(vision, params, { hiddenStates: options.hiddenStates ?? false });
  const head = blip2QFormerProjectorGraph(spec, params, options);
  return (ops: Ops<T>, inputs: Record<string, T>) => {
    const v = tower(ops, { pixel_values: inputs[BLIP2_INPUTS.pixelValues] as T }) as Record<string, T>;
    const feed: Record<string, T> = { ...inputs, [BLIP2_INPUTS.imageEmbeds]: v['vision_output'] as T };
    delete feed[BLIP2_INPUTS.pixelValues];
    const out: Record<string, T> = { vision_output: v['vision_output'] as T, ...head(ops, feed) };
    for (const [name, t] of Object.entries(v)) if (name.startsWith('vision_hidden_states.')) out[name] = t;
    return out;
  };
}

/**
 * Whole `Blip2ForConditionalGeneration.forward` with a decoder-only LM (OPT), on top of an image
 * graph: `inputs_embeds` = `[soft prompt ; embed(input_ids)]`, `lm_attention_mask` =
 * `[ones(Q) ; attention_mask]`, `logits` [B, Q + T, V] over every position, and with the host-built
 * targets (`causalLmTargets`) `loss`. Extra inputs: `input_ids`, optional `attention_mask`,
 * `position_ids` [B, Q + T] (`optPositionIds(mask, 'forward')`), optional `target_index` /
 * `target_weight`.
 */
export function blip2DecoderOnlyForwardGraph<T>(
  lm: OptLanguageModel,
  params: ParamStore<T>,
  image: GraphFn<T>,
): GraphFn<T> {
  return (ops: Ops<T>, x: Record<string, T>) => {
    const out = image(ops, x);
    const lmIn = softPromptInputs(
      ops,
      lm,
      params,
      out['language_projection'] as T,
      x[BLIP2_INPUTS.ids] as T,
      x[BLIP2_INPUTS.mask],
    );
    const { logits } = lm.forward(ops, params, {
      inputsEmbeds: lmIn.inputsEmbeds,
      attentionMask: lmIn.attentionMask,
      positionIds: x[BLIP2_INPUTS.positions] as T,
    });
    out['inputs_embeds'] = lmIn.inputsEmbeds;
    out['lm_attention_mask'] = lmIn.attentionMask;
    out['logits'] = logits;
    const index = x[BLIP2_INPUTS.targetIndex];
    const weight = x[BLIP2_INPUTS.targetWeight];
    if (index !== undefined && weight !== undefined)
      out['loss'] = crossEntropyLoss(ops, logits, index, weight);
    return out;
  };
}

/**
 * Whole forward with an encoder-decoder LM (T5): the encoder reads `[soft prompt ; embed(input_ids)]`
 * with `[ones(Q) ; attention_mask]` (`inputs_embeds`, `lm_attention_mask`,
 * `encoder_last_hidden_state`); with `decoder_input_ids` the decoder gives `logits` [B, L, V], and
 * with `target_index` / `target_weight` (`seq2seqTargets(labels)`) the `loss`.
 */
export function blip2EncoderDecoderForwardGraph<T>(
  lm: T5LanguageModel,
  params: ParamStore<T>,
  image: GraphFn<T>,
): GraphFn<T> {
  return (ops: Ops<T>, x: Record<string, T>) => {
    const out = image(ops, x);
    const lmIn = softPromptInputs(
      ops,
      lm,
      params,
      out['language_projection'] as T,
      x[BLIP2_INPUTS.ids] as T,
      x[BLIP2_INPUTS.mask],
    );
    out['inputs_embeds'] = lmIn.inputsEmbeds;
    out['lm_attention_mask'] = lmIn.attentionMask;
    const decoderIds = x[BLIP2_INPUTS.decoderIds];
    if (decoderIds === undefined) {
      out['encoder_last_hidden_state'] = lm.encode(ops, params, lmIn.inputsEmbeds, lmIn.attentionMask);
      return out;
    }
    const { encoderHidden, logits } = lm.forward(ops, params, {
      inputsEmbeds: lmIn.inputsEmbeds,
      attentionMask: lmIn.attentionMask,
      decoderInputIds: decoderIds,
    });
    out['encoder_last_hidden_state'] = encoderHidden;
    out['logits'] = logits;
    const index = x[BLIP2_INPUTS.targetIndex];
    const weight = x[BLIP2_INPUTS.targetWeight];
    if (index !== undefined && weight !== undefined)
      out['loss'] = crossEntropyLoss(ops, logits, index, weight);
    return out;
  };
}
