import { type Ops, type ParamStore, scoped } from '@qf/core';
import type { KvCache, KvPair } from '../lm/types.js';
import type { OptConfig } from './config.js';
import { OPT_NAMES, OPT_POSITION_OFFSET, hasFinalLayerNorm, hasProjections } from './params.js';

/**
 * HF OPT (`OPTForCausalLM`) as plain functions over the op interface. `params` is scoped to the LM's
 * root (names such as `model.decoder.layers.0.fc1.weight`, `lm_head.weight`), e.g.
 * `scoped(store, 'language_model.')`.
 *
 * Masks are built in the graph from the 0/1 `attention_mask` with `ops.range` and integer arithmetic
 * (no comparison op needed), so the same function works eagerly on tfjs and traced on the ONNX
 * recorder with dynamic past length P and new length T.
 */

/** HF's fill for masked attention scores in OPT: `torch.finfo(float32).min`. */
export const OPT_MASK_FILL = -3.4028234663852886e38;

/** Inputs of {@link optForward}. */
export interface OptForwardInputs<T> {
  /** [B, T, wordEmbedProjDim]: token embeddings and/or a soft prompt. */
  readonly inputsEmbeds: T;
  /** int [B, P + T]: 1 = attend, 0 = padding, over the cached and the new positions. */
  readonly attentionMask: T;
  /** int [B, T]: positions of the new tokens, without OPT's offset of 2 (see `optPositionIds`). */
  readonly positionIds: T;
  /** Cached keys/values of the P earlier positions, per layer [B, heads, P, headDim]; omitted: P = 0. */
  readonly past?: KvCache<T> | undefined;
}

/** Outputs of {@link optForward}. */
export interface OptForwardOutputs<T> {
  /** [B, T, V], or [B, V] (the last position) with `lastOnly`. */
  readonly logits: T;
  /** Keys/values of all P + T positions, per layer [B, heads, P + T, headDim]. */
  readonly present: KvCache<T>;
}

/** Options of {@link optForward}. */
export interface OptForwardOptions {
  /** Return the logits of the last position only ([B, V]); generation needs nothing else. */
  readonly lastOnly?: boolean;
}

const intScalar = <T>(ops: Ops<T>, v: number): T => ops.constant(Int32Array.of(v), []);

/**
 * The additive causal + padding mask [B, 1, T, P + T]: query t (absolute position P + t) may see key
 * j iff `j <= P + t` and `attentionMask[b, j] == 1`; masked entries are {@link OPT_MASK_FILL}, others 0
 * (HF `_prepare_4d_causal_attention_mask_with_cache_position`).
 * @param attentionMask int [B, P + T]
 * @param queries any tensor whose axis 1 has length T (e.g. `inputs_embeds`)
 */
export function optAttentionMask<T>(ops: Ops<T>, attentionMask: T, queries: T): T {
  const keyPos = ops.range(attentionMask, 1); // [S] with S = P + T
  const queryPos = ops.range(queries, 1); // [T]
  const past = ops.sub(ops.max(keyPos, 0), ops.max(queryPos, 0)); // P = (S - 1) - (T - 1)
  // d[t, j] = j - (P + t); the key is visible iff d <= 0.
  const d = ops.sub(ops.reshape(keyPos, [1, 1, 1, -1]), ops.reshape(ops.add(queryPos, past), [1, 1, -1, 1])); // [1, 1, T, S]
  const one = intScalar(ops, 1);
  const future = ops.minimum(ops.maximum(d, intScalar(ops, 0)), one); // 1 where j > P + t
  const causal = ops.sub(one, future);
  const padding = ops.reshape(attentionMask, [0, 1, 1, -1]); // [B, 1, 1, S]
  const keep = ops.toFloat(ops.mul(causal, padding)); // [B, 1, T, S]
  return ops.mul(ops.sub(ops.scalar(1), keep), ops.scalar(OPT_MASK_FILL));
}

function optLinear<T>(ops: Ops<T>, params: ParamStore<T>, c: OptConfig, name: string, x: T): T {
  return ops.linear(x, params.get(`${name}.weight`), c.enableBias ? params.get(`${name}.bias`) : undefined);
}

function optLayerNorm<T>(ops: Ops<T>, params: ParamStore<T>, c: OptConfig, prefix: string, x: T): T {
  if (c.layerNormElementwiseAffine)
    return ops.layerNorm(x, params.get(`${prefix}weight`), params.get(`${prefix}bias`), c.layerNormEps);
  const h = c.hiddenSize;
  const ones = ops.constant(new Float32Array(h).fill(1), [h]);
  const zeros = ops.constant(new Float32Array(h), [h]);
  return ops.layerNorm(x, ones, zeros, c.layerNormEps);
}

/** The activation named by `activation_function` (HF `ACT2FN`). */
export function optActivation<T>(ops: Ops<T>, c: OptConfig, x: T): T {
  switch (c.activationFunction) {
    case 'relu':
      return ops.relu(x);
    case 'gelu':
      return ops.gelu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh': {
      // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
      const cube = ops.mul(ops.mul(x, x), x);
      const inner = ops.mul(
        ops.add(x, ops.mul(cube, ops.scalar(0.044715))),
        ops.scalar(Math.sqrt(2 / Math.PI)),
      );
      return ops.mul(ops.mul(x, ops.scalar(0.5)), ops.add(ops.tanh(inner), ops.scalar(1)));
    }
  }
}

/** [B, T, H] -> [B, heads, T, headDim] */
function splitHeads<T>(ops: Ops<T>, x: T, c: OptConfig): T {
  const heads = c.numAttentionHeads;
  return ops.transpose(ops.reshape(x, [0, 0, heads, c.hiddenSize / heads]), [0, 2, 1, 3]);
}

/**
 * OPT self-attention (HF `OPTAttention`, eager): `q = q_proj(x) * headDim^-0.5`, keys/values appended
 * to the cache, `softmax(q k^T + mask) v`, `out_proj`. `params` is scoped to `...layers.{i}.self_attn.`.
 * @param x [B, T, H]
 * @param mask additive [B, 1, T, P + T]
 * @returns the output [B, T, H] and this layer's keys/values over P + T positions
 */
export function optSelfAttention<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  c: OptConfig,
  x: T,
  mask: T,
  past: KvPair<T> | undefined,
): { readonly output: T; readonly present: KvPair<T> } {
  const headDim = c.hiddenSize / c.numAttentionHeads;
  const q = splitHeads(ops, ops.mul(optLinear(ops, params, c, 'q_proj', x), ops.scalar(headDim ** -0.5)), c);
  let key = splitHeads(ops, optLinear(ops, params, c, 'k_proj', x), c); // [B, h, T, hd]
  let value = splitHeads(ops, optLinear(ops, params, c, 'v_proj', x), c);
  if (past) {
    key = ops.concat([past.key, key], 2); // [B, h, P + T, hd]
    value = ops.concat([past.value, value], 2);
  }
  const probs = ops.softmax(ops.add(ops.matmul(q, key, true), mask)); // [B, h, T, P + T]
  const context = ops.reshape(ops.transpose(ops.matmul(probs, value), [0, 2, 1, 3]), [0, 0, c.hiddenSize]);
  return { output: optLinear(ops, params, c, 'out_proj', context), present: { key, value } };
}

/**
 * One decoder layer (HF `OPTDecoderLayer`, eval mode): pre-LN (`do_layer_norm_before`, default) or
 * post-LN residual blocks around self-attention and `fc2(act(fc1(x)))`. `params` is scoped to
 * `model.decoder.layers.{i}.`.
 */
export function optDecoderLayer<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  c: OptConfig,
  x: T,
  mask: T,
  past: KvPair<T> | undefined,
): { readonly hidden: T; readonly present: KvPair<T> } {
  const pre = c.doLayerNormBefore;
  let h = pre ? optLayerNorm(ops, params, c, 'self_attn_layer_norm.', x) : x;
  const attn = optSelfAttention(ops, scoped(params, 'self_attn.'), c, h, mask, past);
  h = ops.add(x, attn.output);
  if (!pre) h = optLayerNorm(ops, params, c, 'self_attn_layer_norm.', h);
  const residual = h;
  let f = pre ? optLayerNorm(ops, params, c, 'final_layer_norm.', h) : h;
  f = optLinear(ops, params, c, 'fc2', optActivation(ops, c, optLinear(ops, params, c, 'fc1', f)));
  h = ops.add(residual, f);
  if (!pre) h = optLayerNorm(ops, params, c, 'final_layer_norm.', h);
  return { hidden: h, present: attn.present };
}

/** Token embeddings (`embed_tokens`, unscaled): int ids [B, T] -> [B, T, wordEmbedProjDim]. */
export function optEmbed<T>(ops: Ops<T>, params: ParamStore<T>, ids: T): T {
  return ops.gather(params.get(OPT_NAMES.embedTokens), ids);
}

/** Rows `[b, L - 1]` of `x` [B, L, D] -> [B, D], with L read from the tensor (dynamic). */
export function lastPosition<T>(ops: Ops<T>, x: T, width: number): T {
  const one = intScalar(ops, 1);
  const length = ops.add(ops.max(ops.range(x, 1), 0), one); // L
  const rows = ops.add(ops.mul(ops.range(x, 0), length), ops.sub(length, one)); // b * L + L - 1
  return ops.gather(ops.reshape(x, [-1, width]), rows);
}

/**
 * The OPT decoder and LM head from `inputs_embeds` (HF `OPTForCausalLM.forward` with
 * `inputs_embeds`, `attention_mask`, `position_ids` and an optional cache). Position embeddings are
 * `embed_positions[position_ids + 2]`.
 */
export function optForward<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  c: OptConfig,
  inputs: OptForwardInputs<T>,
  options: OptForwardOptions = {},
): OptForwardOutputs<T> {
  const { inputsEmbeds, attentionMask, positionIds, past } = inputs;
  if (past && past.length !== c.numHiddenLayers)
    throw new RangeError(`OPT cache has ${past.length} layers, the model ${c.numHiddenLayers}`);
  const mask = optAttentionMask(ops, attentionMask, inputsEmbeds);
  const positions = ops.gather(
    params.get(OPT_NAMES.embedPositions),
    ops.add(positionIds, intScalar(ops, OPT_POSITION_OFFSET)),
  ); // [B, T, H]
  let h = inputsEmbeds;
  if (hasProjections(c)) h = ops.linear(h, params.get(OPT_NAMES.projectIn));
  h = ops.add(h, positions);
  const present: KvPair<T>[] = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const layer = optDecoderLayer(ops, scoped(params, OPT_NAMES.layer(i)), c, h, mask, past?.[i]);
    h = layer.hidden;
    present.push(layer.present);
  }
  if (hasFinalLayerNorm(c)) h = optLayerNorm(ops, params, c, OPT_NAMES.finalLayerNorm, h);
  if (hasProjections(c)) h = ops.linear(h, params.get(OPT_NAMES.projectOut));
  if (options.lastOnly) h = lastPosition(ops, h, c.wordEmbedProjDim); // [B, Dw]
  const head = params.get(c.tieWordEmbeddings ? OPT_NAMES.embedTokens : OPT_NAMES.lmHead);
  return { logits: ops.linear(h, head), present };
}
