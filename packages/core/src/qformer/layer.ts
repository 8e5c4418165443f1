import { type QFormerConfig, QfError } from '@qf/io';
import type { Ops } from '../ops.js';
import { type ParamStore, scoped } from '../params.js';
import { attentionBlock, denseResidualNorm } from './attention.js';
import { type LayerShape, hasCrossAttention } from './shape.js';

/** Image features the query rows cross-attend to. */
export interface ImageContext<T> {
  /**
   * [B, N, encoder_hidden_size], or [1, N, encoder_hidden_size] shared by every row of the query
   * batch (keys/values are then computed once and broadcast by the attention matmuls)
   */
  readonly embeds: T;
  /** additive mask broadcastable to [B, 1, 1, N] (batch 1 when shared), or undefined when every image token is real */
  readonly mask?: T | undefined;
}

/** How the rows of the sequence split into queries and text. */
export interface RowLayout {
  /** Number of leading query rows (0 for a text-only pass). */
  readonly queryLength: number;
  /** Whether text rows follow the queries. */
  readonly hasText: boolean;
}

/**
 * Feed-forward (HF `Blip2QFormerIntermediate` + `Blip2QFormerOutput`): `LayerNorm(W2 gelu(W1 x) + x)`.
 * `which` picks the query FFN (`intermediate_query`/`output_query`) or the text FFN.
 */
export function feedForward<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  s: LayerShape,
  which: 'query' | 'text',
  x: T,
): T {
  const suffix = which === 'query' ? '_query' : '';
  const h = ops.gelu(
    ops.linear(
      x,
      params.get(`intermediate${suffix}.dense.weight`),
      params.get(`intermediate${suffix}.dense.bias`),
    ),
  );
  return denseResidualNorm(ops, scoped(params, `output${suffix}.`), s, h, x);
}

/**
 * One Q-Former layer (HF `Blip2QFormerLayer`). Self-attention runs over all rows; on layers with
 * cross-attention only the query rows attend to the image; query rows then take the query FFN and
 * text rows the text FFN.
 * @param params scoped to `qformer.encoder.layer.{i}.`
 * @param x [B, L, H] with L = queryLength (+ T when hasText)
 * @param selfMask additive mask broadcastable to [B, heads, L, L], or undefined; with `pastQuery`,
 *   broadcastable to [B, heads, L, P + L]
 * @param pastQuery only for a text-only pass (`queryLength` 0): the hidden states [B, P, H] that
 *   entered this layer in an earlier query pass. The text rows' self-attention then reads keys and
 *   values of `[pastQuery ; x]` (LAVIS's ITG call with the query pass's `past_key_values`: the
 *   queries' keys/values are those of the query pass, the query rows are not recomputed).
 * @param onCrossAttention opt-in: on a layer with cross-attention, receives its probabilities
 *   [B, heads, Q, N] (HF `cross_attentions` with `output_attentions=True`)
 * @returns [B, L, H]
 */
export function qformerLayer<T>(
  ops: Ops<T>,
  cfg: QFormerConfig,
  s: LayerShape,
  params: ParamStore<T>,
  layerIndex: number,
  x: T,
  selfMask: T | undefined,
  rows: RowLayout,
  image: ImageContext<T> | undefined,
  pastQuery?: T | undefined,
  onCrossAttention?: (probs: T) => void,
): T {
  if (pastQuery !== undefined && rows.queryLength !== 0)
    throw new QfError(
      'MODEL_USAGE',
      `Q-Former layer ${layerIndex}: past query states are only for a text-only pass (got ${rows.queryLength} query rows)`,
    );
  const kv = pastQuery === undefined ? x : ops.concat([pastQuery, x], 1); // [B, P + L, H]
  const attended = attentionBlock(ops, scoped(params, 'attention.'), s, x, kv, selfMask); // [B, L, H]
  if (rows.queryLength === 0) return feedForward(ops, params, s, 'text', attended);

  let queries = rows.hasText ? ops.slice(attended, 1, 0, rows.queryLength) : attended; // [B, Q, H]
  if (hasCrossAttention(cfg, layerIndex)) {
    if (!image)
      throw new QfError(
        'MODEL_USAGE',
        `Q-Former layer ${layerIndex} cross-attends but no image features were given`,
      );
    queries = attentionBlock(
      ops,
      scoped(params, 'crossattention.'),
      s,
      queries,
      image.embeds,
      image.mask,
      onCrossAttention,
    );
  }
  queries = feedForward(ops, params, s, 'query', queries);
  if (!rows.hasText) return queries;
  const text = feedForward(ops, params, s, 'text', ops.slice(attended, 1, rows.queryLength)); // [B, T, H]
  return ops.concat([queries, text], 1);
}
