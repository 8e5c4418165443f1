import { type GraphFn, type Ops, type ParamStore, scoped } from '@qf/core';
import { TensorError } from '@qf/io';
import type { KvPair } from '../lm/types.js';
import type { T5Config } from './config.js';
import { t5EncoderMask, t5CrossKeyValues, t5Decoder, t5Encoder } from './stack.js';

/*
 * The graphs a backend runs for T5 (`backend.run(key, fn, inputs)`), with their input and output
 * names. Keys are distinct per graph shape so a tracing backend (ONNX) compiles each once:
 * - `t5:forward`: teacher-forced pass (encoder + full decoder) for logits / loss;
 * - `t5:encoder`: encoder + cross-attention K/V of every decoder block (once per sequence); from
 *   `inputs_embeds`, or as `t5:encoder:s` / `:t` / `:st` from a soft prompt and/or prompt ids;
 * - `t5:decoder-first`: decoder over L ids with no cache (generation's first step: L = 1);
 * - `t5:decoder-step`: one more id per row with the self-attention cache.
 * Integer inputs (ids, 0/1 masks) may be I64 or I32; floats are F32.
 */

/** Graph keys. */
export const T5_GRAPH_KEYS = {
  forward: 't5:forward',
  encoder: 't5:encoder',
  decoderFirst: 't5:decoder-first',
  decoderStep: 't5:decoder-step',
} as const;

/** Input/output names of cross-attention K/V (`cross.{i}.key`), cache inputs and cache outputs. */
export const crossName = (i: number, which: 'key' | 'value') => `cross.${i}.${which}`;
export const pastName = (i: number, which: 'key' | 'value') => `past.${i}.${which}`;
export const presentName = (i: number, which: 'key' | 'value') => `present.${i}.${which}`;

function input<T>(inputs: Record<string, T>, name: string): T {
  const t = inputs[name];
  if (t === undefined) throw new TensorError('TENSOR_MISSING', name, 'T5 graph input is missing');
  return t;
}

function pairs<T>(inputs: Record<string, T>, n: number, name: typeof crossName): KvPair<T>[] {
  return Array.from({ length: n }, (_, i) => ({
    key: input(inputs, name(i, 'key')),
    value: input(inputs, name(i, 'value')),
  }));
}

/**
 * `t5:forward`: `inputs_embeds` [B, S, D], `attention_mask` [B, S], `decoder_input_ids` [B, L] ->
 * `encoder_last_hidden_state` [B, S, D], `logits` [B, L, V].
 * @param params the LM's parameters, scoped to the T5 root (see `T5LanguageModel.root`)
 */
export function t5ForwardGraph<T>(cfg: T5Config, params: ParamStore<T>): GraphFn<T> {
  return (ops, inputs) => {
    const hidden = t5Encoder(
      ops,
      cfg,
      params,
      input(inputs, 'inputs_embeds'),
      input(inputs, 'attention_mask'),
    );
    const { logits } = t5Decoder(ops, cfg, params, {
      ids: input(inputs, 'decoder_input_ids'),
      cross: t5CrossKeyValues(ops, cfg, params, hidden),
      encoderMask: t5EncoderMask(ops, input(inputs, 'attention_mask')),
    });
    return { encoder_last_hidden_state: hidden, logits };
  };
}

/**
 * The encoder input: `inputs_embeds`, or `[soft_prompt ; shared[lm_input_ids]]` (either part may be
 * absent) as BLIP-2 assembles it.
 */
function encoderInput<T>(ops: Ops<T>, params: ParamStore<T>, inputs: Record<string, T>): T {
  const embeds = inputs['inputs_embeds'];
  if (embeds) return embeds;
  const parts: T[] = [];
  const soft = inputs['soft_prompt'];
  const ids = inputs['lm_input_ids'];
  if (soft) parts.push(soft);
  if (ids) parts.push(ops.gather(params.get('shared.weight'), ids));
  const first = parts[0];
  if (!first)
    throw new TensorError(
      'TENSOR_MISSING',
      'inputs_embeds',
      'the T5 encoder needs inputs_embeds, soft_prompt or lm_input_ids',
    );
  return parts.length === 1 ? first : ops.concat(parts, 1); // [B, Q + T, D]
}

/**
 * `t5:encoder`: `inputs_embeds` [B, S, D] (or `soft_prompt` [B, Q, D] and/or `lm_input_ids` [B, T],
 * S = Q + T), `attention_mask` [B, S] -> `encoder_last_hidden_state` [B, S, D] and `cross.{i}.key` /
 * `cross.{i}.value` [B, heads, S, dKv] for every decoder block.
 */
export function t5EncoderGraph<T>(cfg: T5Config, params: ParamStore<T>): GraphFn<T> {
  return (ops, inputs) => {
    const x = encoderInput(ops, params, inputs);
    const hidden = t5Encoder(ops, cfg, params, x, input(inputs, 'attention_mask'));
    const out: Record<string, T> = { encoder_last_hidden_state: hidden };
    t5CrossKeyValues(ops, cfg, params, hidden).forEach((kv, i) => {
      out[crossName(i, 'key')] = kv.key;
      out[crossName(i, 'value')] = kv.value;
    });
    return out;
  };
}

/**
 * `t5:decoder-first` (`withPast` false) / `t5:decoder-step` (`withPast` true): `decoder_input_ids`
 * [B, L], `encoder_attention_mask` [B, S], `cross.{i}.*` and, with a cache, `past.{i}.*`
 * [B, heads, P, dKv] -> `logits` [B, L, V] and `present.{i}.*` [B, heads, P + L, dKv].
 */
export function t5DecoderGraph<T>(cfg: T5Config, params: ParamStore<T>, withPast: boolean): GraphFn<T> {
  return (ops, inputs) => {
    const { logits, present } = t5Decoder(ops, cfg, params, {
      ids: input(inputs, 'decoder_input_ids'),
      cross: pairs(inputs, cfg.numDecoderLayers, crossName),
      encoderMask: t5EncoderMask(ops, input(inputs, 'encoder_attention_mask')),
      past: withPast ? pairs(inputs, cfg.numDecoderLayers, pastName) : undefined,
    });
    const out: Record<string, T> = { logits };
    present.forEach((kv, i) => {
      out[presentName(i, 'key')] = kv.key;
      out[presentName(i, 'value')] = kv.value;
    });
    return out;
  };
}

/** `params` scoped to the T5 root under `prefix`. */
export function t5Root<T>(params: ParamStore<T>, prefix: string): ParamStore<T> {
  return prefix ? scoped(params, prefix) : params;
}
