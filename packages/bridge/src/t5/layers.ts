import { type Ops, type ParamStore, scoped } from '@qf/core';
import type { T5Activation, T5Config } from './config.js';

/**
 * T5's LayerNorm (HF `T5LayerNorm`, RMSNorm): `weight * x / sqrt(mean(x^2) + eps)`, no mean
 * subtraction and no bias.
 * @param x [..., D]
 */
export function rmsNorm<T>(ops: Ops<T>, x: T, weight: T, eps: number): T {
  const variance = ops.mean(ops.mul(x, x), -1, true); // [..., 1]
  return ops.mul(weight, ops.div(x, ops.sqrt(ops.add(variance, ops.scalar(eps)))));
}

/** `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (HF `gelu_new`, the tanh approximation). */
export function geluTanh<T>(ops: Ops<T>, x: T): T {
  const cube = ops.mul(ops.mul(x, x), x);
  const inner = ops.mul(ops.add(x, ops.mul(cube, ops.scalar(0.044715))), ops.scalar(Math.sqrt(2 / Math.PI)));
  return ops.mul(ops.mul(x, ops.scalar(0.5)), ops.add(ops.scalar(1), ops.tanh(inner)));
}

/** The feed-forward activation named by `dense_act_fn`. */
export function activation<T>(ops: Ops<T>, act: T5Activation, x: T): T {
  switch (act) {
    case 'relu':
      return ops.relu(x);
    case 'gelu':
      return ops.gelu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return geluTanh(ops, x);
    case 'silu':
    case 'swish': // x * sigmoid(x)
      return ops.div(x, ops.add(ops.scalar(1), ops.exp(ops.mul(x, ops.scalar(-1)))));
  }
}

/**
 * Feed-forward sub-layer with its pre-norm and residual (HF `T5LayerFF`): `x + wo(act(wi_0 n) * wi_1 n)`
 * (gated) or `x + wo(act(wi n))`, with `n = rmsNorm(x)`. No biases.
 * @param params scoped to `...block.{i}.layer.{1 or 2}.`
 * @param x [B, L, D]
 */
export function feedForward<T>(ops: Ops<T>, cfg: T5Config, params: ParamStore<T>, x: T): T {
  const n = rmsNorm(ops, x, params.get('layer_norm.weight'), cfg.layerNormEpsilon);
  const p = scoped(params, 'DenseReluDense.');
  const h = cfg.isGatedAct
    ? ops.mul(
        activation(ops, cfg.denseActFn, ops.linear(n, p.get('wi_0.weight'))),
        ops.linear(n, p.get('wi_1.weight')),
      )
    : activation(ops, cfg.denseActFn, ops.linear(n, p.get('wi.weight')));
  return ops.add(x, ops.linear(h, p.get('wo.weight'))); // dropout would go before the residual in training
}

/** [B, L, D] -> linear -> [B, heads, L, dKv] */
export function projectHeads<T>(ops: Ops<T>, cfg: T5Config, x: T, weight: T): T {
  const y = ops.linear(x, weight); // [B, L, heads * dKv]
  return ops.transpose(ops.reshape(y, [0, 0, cfg.numHeads, cfg.dKv]), [0, 2, 1, 3]);
}

/**
 * T5 attention core (HF `T5Attention` after the projections): `softmax(q k^T + bias) v`, with no
 * `1/sqrt(d)` scaling, heads merged and projected by `o`.
 * @param q [B, h, Lq, dKv]
 * @param k [B, h, Lk, dKv]
 * @param v [B, h, Lk, dKv]
 * @param bias position bias and/or additive mask broadcastable to [B, h, Lq, Lk]
 * @returns [B, Lq, D]
 */
export function attend<T>(ops: Ops<T>, cfg: T5Config, q: T, k: T, v: T, bias: T | undefined, o: T): T {
  let scores = ops.matmul(q, k, true); // [B, h, Lq, Lk]
  if (bias) scores = ops.add(scores, bias);
  const context = ops.matmul(ops.softmax(scores), v); // [B, h, Lq, dKv]; dropout would go on the probs
  const merged = ops.reshape(ops.transpose(context, [0, 2, 1, 3]), [0, 0, cfg.numHeads * cfg.dKv]);
  return ops.linear(merged, o); // [B, Lq, D]
}
