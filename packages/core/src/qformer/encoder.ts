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
}

/** Outputs of one Q-Former pass. */
export interface QFormerPassOutputs<T> {
  /** [B, L, H] */
  readonly lastHiddenState: T;
  /** hidden_states.0 (after the embedding LayerNorm) .. hidden_states.{numLayers}: [B, L, H] each */
  readonly hiddenStates: readonly T[];
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
  let h = concatInputs(ops, inputs.queries, inputs.text); // [B, L, H]
  h = ops.layerNorm(h, params.get('qformer.layernorm.weight'), params.get('qformer.layernorm.bias'), s.eps);
  const hiddenStates = [h];
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const layerParams = scoped(params, `qformer.encoder.layer.${i}.`);
    h = qformerLayer(ops, cfg, s, layerParams, i, h, inputs.selfMask, rows, inputs.image);
    hiddenStates.push(h);
  }
  return { lastHiddenState: h, hiddenStates };
}
