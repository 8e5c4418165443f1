import {
  type GraphFn,
  type LossFn,
  type Ops,
  type ParamStore,
  type QFormerModelSpec,
  SELF_ATTENTION_FILL,
  additiveMask,
  bidirectionalMask,
  imageFeatures,
  itcSimilarity,
  itmLogits,
  paddingMask,
  qformerEncoder,
  queryTokens,
  textEmbeddings,
  textFeature,
} from '@qf/core';
import type { Stage1InputName } from './batch.js';
import { crossEntropyFromTargets, softCrossEntropy } from '@qf/core';
import { LossError } from './errors.js';
import { STAGE1_NAMES, lmHeadLogits } from './lm-head.js';
import { checkStage1Spec } from './params.js';

/** The three stage-1 objectives. */
export type Stage1Part = 'itc' | 'itm' | 'itg';

/**
 * Outputs of the stage-1 loss: the golden `stage1_losses` names, except `temperature` (golden `temp`,
 * the value of the `temp` parameter).
 */
export type Stage1OutputName =
  | 'loss'
  | 'loss_itc'
  | 'loss_itm'
  | 'loss_lm'
  | 'query_output'
  | 'text_output'
  | 'image_feats'
  | 'text_feat'
  | 'sim_i2t'
  | 'sim_t2i'
  | 'temperature'
  | 'weights_i2t'
  | 'weights_t2i'
  | 'itm_output'
  | 'itm_logits'
  | 'lm_output'
  | 'lm_logits';

/** Options of {@link stage1Loss}. */
export interface Stage1LossOptions {
  /** Objectives to compute; `loss` is their sum (default all three: ITC + ITM + ITG). */
  readonly parts?: readonly Stage1Part[];
  /** ITG label smoothing (default 0.1, as LAVIS's `BertLMHeadModel`). */
  readonly itgLabelSmoothing?: number;
  /**
   * Outputs to return besides `loss` (default: every output of the computed parts). Training asks for
   * the loss parts only, so the large intermediates are not read back.
   */
  readonly outputs?: readonly Stage1OutputName[];
}

/** A stable key for caching traced stage-1 graphs (see `Backend.run`). */
export function stage1GraphKey(options: Stage1LossOptions = {}): string {
  const parts = [...(options.parts ?? ['itc', 'itm', 'itg'])].sort().join('+');
  const outs = options.outputs ? [...options.outputs].sort().join(',') : '*';
  return `stage1:${parts}:ls${options.itgLabelSmoothing ?? 0.1}:${outs}`;
}

function need<T>(inputs: Record<string, T>, name: Stage1InputName): T {
  const x = inputs[name];
  if (x === undefined)
    throw new LossError('LOSS_INPUT', `stage-1 loss: input "${name}" is missing (see prepareStage1Inputs)`);
  return x;
}

/**
 * BLIP-2 stage 1 (LAVIS `Blip2Qformer.forward`, single process) as a loss function over the op
 * interface, reading the inputs of `prepareStage1Inputs`:
 * - ITC: `sim_i2t = max_q(image_feats . text_feat) / temp`, `sim_t2i` its transpose,
 *   `loss_itc = (CE_soft(sim_i2t, itc_targets) + CE_soft(sim_t2i, itc_targets)) / 2`;
 * - ITM: `weights_* = softmax(sim_* with positives set to -10000)` (outputs only: the negatives are
 *   inputs, drawn outside the graph as LAVIS draws them under `no_grad`), the bidirectional pass over
 *   `[pos; (neg image, text); (image, neg text)]`, `itm_head` on the query rows averaged, CE;
 * - ITG: decoder ids through a text-only pass whose self-attention also reads the query pass's keys
 *   and values (LAVIS `past_key_values`), the tied BERT LM head, CE with label smoothing over the
 *   shifted, non-pad labels.
 * No dropout (the op interface has none): values match LAVIS in eval mode.
 * @throws LossError `LOSS_MODEL` when the model lacks the text path or retrieval heads
 */
export function stage1Loss<T>(
  spec: QFormerModelSpec,
  options: Stage1LossOptions = {},
): LossFn<T, Stage1OutputName> {
  checkStage1Spec(spec);
  const parts = new Set(options.parts ?? ['itc', 'itm', 'itg']);
  if (parts.size === 0) throw new LossError('LOSS_INPUT', 'stage-1 loss: no objective selected');
  const cfg = spec.qformer;
  const q = spec.numQueryTokens;
  const eps = cfg.layerNormEps;
  const lmSmoothing = options.itgLabelSmoothing ?? 0.1;
  const wanted = options.outputs ? new Set<string>(options.outputs) : undefined;

  return (ops: Ops<T>, params: ParamStore<T>, x: Record<string, T>) => {
    const out: Partial<Record<Stage1OutputName, T>> = {};
    const imageEmbeds = need(x, 'image_embeds');
    const inputIds = need(x, 'input_ids');
    const image = { embeds: imageEmbeds };

    // Query pass (its per-layer inputs are the ITG pass's past keys/values).
    const queryPass = qformerEncoder(ops, cfg, params, {
      queries: queryTokens(ops, params, imageEmbeds),
      queryLength: q,
      image,
    });
    out.query_output = queryPass.lastHiddenState;

    // ITC: unimodal text pass, features, similarities.
    const textPass = qformerEncoder(ops, cfg, params, {
      text: textEmbeddings(ops, params, inputIds),
      selfMask: paddingMask(ops, need(x, 'attention_mask'), SELF_ATTENTION_FILL),
    });
    out.text_output = textPass.lastHiddenState;
    out.image_feats = imageFeatures(ops, params, queryPass.lastHiddenState); // [B, Q, D]
    out.text_feat = textFeature(ops, params, textPass.lastHiddenState); // [B, D]
    const temp = params.get(STAGE1_NAMES.temp);
    // A copy (outputs are freed after they are read), and not called `temp`: that name is the
    // parameter's, which an ONNX graph already uses for the initializer.
    out.temperature = ops.mul(temp, ops.scalar(1));
    const simI2t = ops.div(itcSimilarity(ops, out.image_feats, out.text_feat), temp); // [B_img, B_txt]
    const simT2i = ops.transpose(simI2t, [1, 0]); // [B_txt, B_img]
    out.sim_i2t = simI2t;
    out.sim_t2i = simT2i;
    const losses: T[] = [];
    if (parts.has('itc')) {
      const targets = need(x, 'itc_targets');
      out.loss_itc = ops.mul(
        ops.add(softCrossEntropy(ops, simI2t, targets), softCrossEntropy(ops, simT2i, targets)),
        ops.scalar(0.5),
      );
      losses.push(out.loss_itc);
    }
    // Hard-negative sampling weights (LAVIS: masked_fill(positives, -10000), softmax).
    const pos = need(x, 'itc_positive');
    const notPos = ops.sub(ops.scalar(1), pos);
    const fill = ops.mul(pos, ops.scalar(SELF_ATTENTION_FILL));
    out.weights_i2t = ops.softmax(ops.add(ops.mul(simI2t, notPos), fill));
    out.weights_t2i = ops.softmax(
      ops.add(ops.mul(simT2i, ops.transpose(notPos, [1, 0])), ops.transpose(fill, [1, 0])),
    );

    if (parts.has('itm')) {
      const e = cfg.encoderHiddenSize;
      const negImages = ops.reshape(ops.gather(ops.reshape(imageEmbeds, [0, -1]), need(x, 'neg_image_idx')), [
        0,
        -1,
        e,
      ]); // [B, N, E]
      const itmIds = need(x, 'itm_input_ids'); // [3B, T]
      const mm = qformerEncoder(ops, cfg, params, {
        queries: queryTokens(ops, params, itmIds),
        queryLength: q,
        text: textEmbeddings(ops, params, itmIds),
        selfMask: bidirectionalMask(ops, q, need(x, 'itm_attention_mask')),
        image: { embeds: ops.concat([imageEmbeds, negImages, imageEmbeds], 0) }, // pos, neg, pos
      });
      out.itm_output = mm.lastHiddenState;
      out.itm_logits = itmLogits(ops, params, mm.lastHiddenState, q); // [3B, 2]
      out.loss_itm = crossEntropyFromTargets(ops, out.itm_logits, { index: need(x, 'itm_target_index') });
      losses.push(out.loss_itm);
    }

    if (parts.has('itg')) {
      const lm = qformerEncoder(ops, cfg, params, {
        text: textEmbeddings(ops, params, need(x, 'lm_input_ids')),
        selfMask: additiveMask(ops, need(x, 'lm_keep')), // [B, 1, T, Q + T]
        pastQuery: queryPass.hiddenStates.slice(0, cfg.numHiddenLayers),
      });
      out.lm_output = lm.lastHiddenState; // [B, T, H]
      out.lm_logits = lmHeadLogits(ops, params, lm.lastHiddenState, eps); // [B, T, V]
      out.loss_lm = crossEntropyFromTargets(
        ops,
        out.lm_logits,
        { index: need(x, 'lm_target_index'), weight: need(x, 'lm_target_weight') },
        lmSmoothing,
      );
      losses.push(out.loss_lm);
    }

    let loss = losses[0] as T;
    for (const l of losses.slice(1)) loss = ops.add(loss, l);
    const result: { loss: T } & Partial<Record<Stage1OutputName, T>> = { loss };
    for (const [name, t] of Object.entries(out) as [Stage1OutputName, T][])
      if (!wanted || wanted.has(name)) result[name] = t;
    return result;
  };
}

/** {@link stage1Loss} with the parameters captured, for `Backend.run`. */
export function stage1Graph<T>(
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  options: Stage1LossOptions = {},
): GraphFn<T, Stage1OutputName> {
  const loss = stage1Loss<T>(spec, options);
  return (ops, inputs) => loss(ops, params, inputs) as Record<Stage1OutputName, T>;
}
