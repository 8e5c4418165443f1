import { type QFormerConfig, QfError } from '@qf/io';
import type { Ops } from '../ops.js';
import { type ParamStore, scoped } from '../params.js';
import { concatInputs } from './embeddings.js';
import { type ImageContext, qformerLayer } from './layer.js';
import { layerShape } from './shape.js';

/** Inputs of one Q-Former pass. */
export interface QFormerPassInputs<T> {
  /** Query embeddings [B, Q, H] (usually the expanded query tokens); omit for a text-only pass. */
  readonly queries?: T | undefined;
  /** Text embeddings [B, T, H] (see `textEmbeddings`); omit for a query-only pass. */
  readonly text?: T | undefined;
  /** Additive self-attention mask broadcastable to [B, heads, L, L] (see `masks.ts`). */
  readonly selfMask?: T | undefined;
  /** Image features for cross-attention; required when queries are present. */
  readonly image?: ImageContext<T> | undefined;
  /** Number of query rows; required when `queries` is given. */
  readonly queryLength?: number;
  /**
   * Text-only pass that continues a query pass (LAVIS ITG with `past_key_values`): for each layer i,
   * the hidden states [B, Q, H] that entered layer i in the query pass, i.e. `hiddenStates[i]` of
   * that pass (`hiddenStates.slice(0, numLayers)`). Text row t then attends over the queries' keys
   * and values and the text's own; `selfMask` must then be broadcastable to [B, heads, T, Q + T]
   * (see `itgTextKeep`). Not allowed with `queries`.
   */
  readonly pastQuery?: readonly T[] | undefined;
  /**
   * Opt-in: also return the cross-attention probabilities of every layer that cross-attends
   * (`crossAttentions`). Off by default; the graph is then unchanged.
   */
  readonly crossAttentions?: boolean | undefined;
}

/** Outputs of one Q-Former pass. */
export interface QFormerPassOutputs<T> {
  /** [B, L, H] */
  readonly lastHiddenState: T;
  /** hidden_states.0 (after the embedding LayerNorm) .. hidden_states.{numLayers}: [B, L, H] each */
  readonly hiddenStates: readonly T[];
  /**
   * With `crossAttentions`: layer index -> that layer's cross-attention probabilities
   * [B, heads, Q, N] (softmax over the N image tokens; masked tokens get 0), for the layers with
   * cross-attention (`i % cross_attention_frequency == 0`), in layer order. Absent otherwise.
   */
  readonly crossAttentions?: ReadonlyMap<number, T>;
}

/**
 * The Q-Former (HF `Blip2QFormerModel.forward` from its `query_embeds` input on): LayerNorm over
 * [queries ; text], then `num_hidden_layers` layers.
 */
export function qformerEncoder<T>(
  ops: Ops<T>,
  cfg: QFormerConfig,
  params: ParamStore<T>,
  inputs: QFormerPassInputs<T>,
): QFormerPassOutputs<T> {
  const s = layerShape(cfg);
  const rows = {
    queryLength: inputs.queries ? (inputs.queryLength ?? 0) : 0,
    hasText: inputs.text !== undefined,
  };
  if (inputs.queries && rows.queryLength <= 0)
    throw new QfError('MODEL_USAGE', 'qformerEncoder: queryLength is required with queries');
  const past = inputs.pastQuery;
  if (past !== undefined) {
    if (inputs.queries !== undefined || inputs.text === undefined)
      throw new QfError('MODEL_USAGE', 'qformerEncoder: pastQuery needs a text-only pass (text, no queries)');
    if (past.length !== cfg.numHiddenLayers)
      throw new QfError(
        'MODEL_USAGE',
        `qformerEncoder: pastQuery has ${past.length} entries, expected one per layer (${cfg.numHiddenLayers})`,
      );
  }
  let h = concatInputs(ops, inputs.queries, inputs.text); // [B, L, H]
  h = ops.layerNorm(h, params.get('qformer.layernorm.weight'), params.get('qformer.layernorm.bias'), s.eps);
  const hiddenStates = [h];
  const cross = inputs.crossAttentions ? new Map<number, T>() : undefined;
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const layerParams = scoped(params, `qformer.encoder.layer.${i}.`);
    const onCross = cross ? (p: T) => cross.set(i, p) : undefined;
    h = qformerLayer(ops, cfg, s, layerParams, i, h, inputs.selfMask, rows, inputs.image, past?.[i], onCross);
    hiddenStates.push(h);
  }
  return cross
    ? { lastHiddenState: h, hiddenStates, crossAttentions: cross }
    : { lastHiddenState: h, hiddenStates };
}
