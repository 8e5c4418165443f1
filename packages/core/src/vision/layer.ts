import type { Ops } from '../ops.js';
import { type ParamStore, scoped } from '../params.js';
import type { VisionShape } from './spec.js';

/** [B, L, D] -> [B, heads, L, headDim] */
function splitHeads<T>(ops: Ops<T>, x: T, s: VisionShape): T {
  return ops.transpose(ops.reshape(x, [0, 0, s.numHeads, s.headDim]), [0, 2, 1, 3]);
}

/**
 * Self-attention of the vision tower (HF `Blip2Attention`): one fused projection
 * `qkv(x)` [B, L, 3D] split into Q, K, V; `softmax(Q K^T / sqrt(head_dim)) V`; then `projection`.
 * The fused bias, when present, is HF's `[q_bias, 0, v_bias]` (a K bias would shift every score of
 * a query row by the same amount, which softmax ignores). No mask: every token sees every token.
 * @param params scoped to `vision_model.encoder.layers.{i}.self_attn.`
 * @param x [B, L, D]
 * @returns [B, L, D]
 */
export function visionAttention<T>(ops: Ops<T>, s: VisionShape, params: ParamStore<T>, x: T): T {
  const d = s.hidden;
  const bias = params.has('qkv.bias') ? params.get('qkv.bias') : undefined;
  const qkv = ops.linear(x, params.get('qkv.weight'), bias); // [B, L, 3D]
  const q = splitHeads(ops, ops.slice(qkv, -1, 0, d), s); // [B, h, L, hd]
  const k = splitHeads(ops, ops.slice(qkv, -1, d, 2 * d), s);
  const v = splitHeads(ops, ops.slice(qkv, -1, 2 * d, 3 * d), s);
  const scores = ops.mul(ops.matmul(q, k, true), ops.scalar(1 / Math.sqrt(s.headDim))); // [B, h, L, L]
  const probs = ops.softmax(scores); // dropout would go here in training
  const context = ops.reshape(ops.transpose(ops.matmul(probs, v), [0, 2, 1, 3]), [0, 0, d]); // [B, L, D]
  return ops.linear(context, params.get('projection.weight'), params.get('projection.bias'));
}

/**
 * MLP of the vision tower (HF `Blip2MLP`): `fc2(gelu(fc1(x)))` with exact (erf) GELU.
 * @param params scoped to `vision_model.encoder.layers.{i}.mlp.`
 * @returns [B, L, D]
 */
export function visionMlp<T>(ops: Ops<T>, params: ParamStore<T>, x: T): T {
  const h = ops.gelu(ops.linear(x, params.get('fc1.weight'), params.get('fc1.bias'))); // [B, L, I]
  return ops.linear(h, params.get('fc2.weight'), params.get('fc2.bias'));
}

/**
 * One pre-LayerNorm encoder block (HF `Blip2EncoderLayer`):
 * `h = x + attn(LN1(x))`, then `h + mlp(LN2(h))`.
 * @param params scoped to `vision_model.encoder.layers.{i}.`
 * @param x [B, L, D]
 * @returns [B, L, D]
 */
export function visionEncoderLayer<T>(ops: Ops<T>, s: VisionShape, params: ParamStore<T>, x: T): T {
  const ln = (name: string, t: T) =>
    ops.layerNorm(t, params.get(`${name}.weight`), params.get(`${name}.bias`), s.eps);
  const h = ops.add(x, visionAttention(ops, s, scoped(params, 'self_attn.'), ln('layer_norm1', x)));
  return ops.add(h, visionMlp(ops, scoped(params, 'mlp.'), ln('layer_norm2', h)));
}
