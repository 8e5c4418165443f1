import { type Ops, type ParamStore, paddingMask, scoped } from '@qf/core';
import { QfError } from '@qf/io';
import type { KvCache, KvPair } from '../lm/types.js';
import { T5_MASK_FILL, t5PositionBias } from './buckets.js';
import type { T5Config } from './config.js';
import { attend, feedForward, projectHeads, rmsNorm } from './layers.js';

/*
 * T5 encoder and decoder stacks (HF `T5Stack`) as plain functions over the op interface. `params`
 * is scoped to the T5 root, i.e. names like `encoder.block.0.layer.0.SelfAttention.q.weight`
 * (the model class adds BLIP-2's `language_model.` prefix). Every sub-layer is pre-norm with a
 * residual; dropout (training only) is not applied.
 */

/** The additive encoder padding mask: `(1 - m) * float32.min`, [B, S] 0/1 -> [B, 1, 1, S]. */
export function t5EncoderMask<T>(ops: Ops<T>, attentionMask: T): T {
  return paddingMask(ops, attentionMask, T5_MASK_FILL);
}

/**
 * The T5 encoder from embeddings (HF `T5Stack` with `inputs_embeds`): blocks of bidirectional
 * self-attention (relative position bias from block 0, shared by every block, plus the padding mask)
 * and feed-forward, then `final_layer_norm`.
 * @param inputsEmbeds [B, S, D]
 * @param attentionMask [B, S] 1 = real token, 0 = padding; undefined when every token is real
 * @returns last hidden state [B, S, D]
 */
export function t5Encoder<T>(
  ops: Ops<T>,
  cfg: T5Config,
  params: ParamStore<T>,
  inputsEmbeds: T,
  attentionMask: T | undefined,
): T {
  const enc = scoped(params, 'encoder.');
  const positions = ops.range(inputsEmbeds, 1);
  const relWeight = enc.get('block.0.layer.0.SelfAttention.relative_attention_bias.weight');
  let bias = t5PositionBias(ops, cfg, relWeight, true, positions, positions); // [1, h, S, S]
  if (attentionMask) bias = ops.add(bias, t5EncoderMask(ops, attentionMask)); // [B, h, S, S]
  let h = inputsEmbeds;
  for (let i = 0; i < cfg.numLayers; i++) {
    const block = scoped(enc, `block.${i}.`);
    const sa = scoped(block, 'layer.0.');
    const n = rmsNorm(ops, h, sa.get('layer_norm.weight'), cfg.layerNormEpsilon);
    const q = projectHeads(ops, cfg, n, sa.get('SelfAttention.q.weight'));
    const k = projectHeads(ops, cfg, n, sa.get('SelfAttention.k.weight'));
    const v = projectHeads(ops, cfg, n, sa.get('SelfAttention.v.weight'));
    h = ops.add(h, attend(ops, cfg, q, k, v, bias, sa.get('SelfAttention.o.weight')));
    h = feedForward(ops, cfg, scoped(block, 'layer.1.'), h);
  }
  return rmsNorm(ops, h, enc.get('final_layer_norm.weight'), cfg.layerNormEpsilon);
}

/**
 * Cross-attention keys and values of every decoder block (HF `EncDecAttention.k/v` of the encoder
 * output), computed once per sequence and reused by every decoding step.
 * @param encoderHidden [B, S, D]
 * @returns one pair per decoder block, each [B, heads, S, dKv]
 */
export function t5CrossKeyValues<T>(
  ops: Ops<T>,
  cfg: T5Config,
  params: ParamStore<T>,
  encoderHidden: T,
): KvPair<T>[] {
  const out: KvPair<T>[] = [];
  for (let i = 0; i < cfg.numDecoderLayers; i++) {
    const ca = scoped(params, `decoder.block.${i}.layer.1.EncDecAttention.`);
    out.push({
      key: projectHeads(ops, cfg, encoderHidden, ca.get('k.weight')),
      value: projectHeads(ops, cfg, encoderHidden, ca.get('v.weight')),
    });
  }
  return out;
}

/** Inputs of {@link t5Decoder}. */
export interface T5DecoderInputs<T> {
  /** Decoder token ids [B, L] (int). */
  readonly ids: T;
  /** Cross-attention keys/values per block ({@link t5CrossKeyValues}), each [B, heads, S, dKv]. */
  readonly cross: KvCache<T>;
  /** Additive encoder mask [B, 1, 1, S] ({@link t5EncoderMask}), or undefined when nothing is padded. */
  readonly encoderMask?: T | undefined;
  /** Self-attention keys/values of the P earlier positions per block, each [B, heads, P, dKv]. */
  readonly past?: KvCache<T> | undefined;
}

/** Outputs of {@link t5Decoder}. */
export interface T5DecoderOutputs<T> {
  /** [B, L, vocab] */
  readonly logits: T;
  /** Self-attention keys/values of all P + L positions per block, each [B, heads, P + L, dKv]. */
  readonly present: KvPair<T>[];
}

/**
 * The T5 decoder and LM head (HF `T5Stack` decoder + `T5ForConditionalGeneration.lm_head`): token
 * embeddings (`shared`, unscaled), blocks of causal self-attention (relative position bias from block
 * 0 with the causal mask folded in, see {@link t5PositionBias}), cross-attention to the encoder output
 * (no position bias, only the padding mask) and feed-forward, `final_layer_norm`, then the LM head.
 * With tied word embeddings the hidden state is scaled by `d_model ** -0.5` and multiplied by `shared`;
 * otherwise `lm_head` is used unscaled.
 *
 * Positions are relative to the cache: the L ids are positions P..P+L-1 when `past` holds P.
 */
export function t5Decoder<T>(
  ops: Ops<T>,
  cfg: T5Config,
  params: ParamStore<T>,
  inputs: T5DecoderInputs<T>,
): T5DecoderOutputs<T> {
  const dec = scoped(params, 'decoder.');
  let h = ops.gather(params.get('shared.weight'), inputs.ids); // [B, L, D]
  const queryPositions = ops.range(h, 1);
  let bias: T | undefined;
  const present: KvPair<T>[] = [];
  for (let i = 0; i < cfg.numDecoderLayers; i++) {
    const block = scoped(dec, `block.${i}.`);
    const cross = inputs.cross[i];
    if (!cross)
      throw new QfError(
        'MODEL_USAGE',
        `t5Decoder: cross-attention keys/values for ${cfg.numDecoderLayers} blocks expected, got ${inputs.cross.length}`,
      );

    const sa = scoped(block, 'layer.0.');
    let n = rmsNorm(ops, h, sa.get('layer_norm.weight'), cfg.layerNormEpsilon);
    const q = projectHeads(ops, cfg, n, sa.get('SelfAttention.q.weight'));
    let k = projectHeads(ops, cfg, n, sa.get('SelfAttention.k.weight'));
    let v = projectHeads(ops, cfg, n, sa.get('SelfAttention.v.weight'));
    const past = inputs.past?.[i];
    if (past) {
      k = ops.concat([past.key, k], 2); // [B, h, P + L, dKv]
      v = ops.concat([past.value, v], 2);
    }
    present.push({ key: k, value: v });
    if (!bias) {
      const relWeight = dec.get('block.0.layer.0.SelfAttention.relative_attention_bias.weight');
      bias = t5PositionBias(ops, cfg, relWeight, false, queryPositions, ops.range(k, 2)); // [1, h, L, P+L]
    }
    h = ops.add(h, attend(ops, cfg, q, k, v, bias, sa.get('SelfAttention.o.weight')));

    const ca = scoped(block, 'layer.1.');
    n = rmsNorm(ops, h, ca.get('layer_norm.weight'), cfg.layerNormEpsilon);
    const cq = projectHeads(ops, cfg, n, ca.get('EncDecAttention.q.weight'));
    const o = ca.get('EncDecAttention.o.weight');
    h = ops.add(h, attend(ops, cfg, cq, cross.key, cross.value, inputs.encoderMask, o));

    h = feedForward(ops, cfg, scoped(block, 'layer.2.'), h);
  }
  h = rmsNorm(ops, h, dec.get('final_layer_norm.weight'), cfg.layerNormEpsilon);
  const logits = cfg.tieWordEmbeddings
    ? ops.linear(ops.mul(h, ops.scalar(cfg.dModel ** -0.5)), params.get('shared.weight'))
    : ops.linear(h, params.get('lm_head.weight'));
  return { logits, present };
}
