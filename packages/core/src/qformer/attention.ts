import type { Ops } from '../ops.js';
import { type ParamStore, scoped } from '../params.js';
import type { LayerShape } from './shape.js';

/** [B, L, H] -> [B, heads, L, headDim] */
function splitHeads<T>(ops: Ops<T>, x: T, s: LayerShape): T {
  return ops.transpose(ops.reshape(x, [0, 0, s.numHeads, s.headDim]), [0, 2, 1, 3]);
}

/** [B, heads, L, headDim] -> [B, L, H] */
function mergeHeads<T>(ops: Ops<T>, x: T, s: LayerShape): T {
  return ops.reshape(ops.transpose(x, [0, 2, 1, 3]), [0, 0, s.numHeads * s.headDim]);
}

/**
 * Scaled dot-product multi-head attention (HF `Blip2QFormerMultiHeadAttention`): queries from `x`,
 * keys and values from `kv` (`kv === x` for self-attention, image features for cross-attention).
 * `params` is scoped to `...attention.attention.` (or `...crossattention.attention.`).
 * @param x [B, Lq, H]
 * @param kv [B, Lk, H or encoder_hidden_size]; batch 1 is broadcast over the B rows of `x` (K/V are
 *   then projected once, and `matmul` broadcasts them)
 * @param mask additive mask broadcastable to [B, heads, Lq, Lk], or undefined for none
 * @param onProbs opt-in: receives the attention probabilities [B, heads, Lq, Lk] (after softmax,
 *   before dropout; HF's `output_attentions`). Nothing extra is computed when omitted.
 * @returns context [B, Lq, H]
 */
export function multiHeadAttention<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  s: LayerShape,
  x: T,
  kv: T,
  mask: T | undefined,
  onProbs?: (probs: T) => void,
): T {
  const q = splitHeads(ops, ops.linear(x, params.get('query.weight'), params.get('query.bias')), s);
  const k = splitHeads(ops, ops.linear(kv, params.get('key.weight'), params.get('key.bias')), s);
  const v = splitHeads(ops, ops.linear(kv, params.get('value.weight'), params.get('value.bias')), s);
  let scores = ops.mul(ops.matmul(q, k, true), ops.scalar(1 / Math.sqrt(s.headDim))); // [B, h, Lq, Lk]
  if (mask) scores = ops.add(scores, mask);
  const probs = ops.softmax(scores); // dropout would go here in training
  onProbs?.(probs);
  return mergeHeads(ops, ops.matmul(probs, v), s); // [B, Lq, H]
}

/**
 * Dense projection, residual and post-LayerNorm (HF `Blip2QFormerSelfOutput` / `Blip2QFormerOutput`):
 * `LayerNorm(dense(h) + residual)`. `params` is scoped to the block holding `dense` and `LayerNorm`.
 */
export function denseResidualNorm<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  s: LayerShape,
  h: T,
  residual: T,
): T {
  const out = ops.linear(h, params.get('dense.weight'), params.get('dense.bias'));
  return ops.layerNorm(
    ops.add(out, residual),
    params.get('LayerNorm.weight'),
    params.get('LayerNorm.bias'),
    s.eps,
  );
}

/**
 * A full attention block (HF `Blip2QFormerAttention`): multi-head attention, then output dense +
 * residual + LayerNorm. `params` is scoped to `...layer.{i}.attention.` or `...crossattention.`.
 * @param onProbs opt-in: receives the attention probabilities (see {@link multiHeadAttention})
 * @returns [B, Lq, H]
 */
export function attentionBlock<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  s: LayerShape,
  x: T,
  kv: T,
  mask: T | undefined,
  onProbs?: (probs: T) => void,
): T {
  const context = multiHeadAttention(ops, scoped(params, 'attention.'), s, x, kv, mask, onProbs);
  return denseResidualNorm(ops, scoped(params, 'output.'), s, context, x);
}
