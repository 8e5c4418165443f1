import type { Ops, ParamStore } from '@qf/core';

/**
 * The contract between a language model and everything around it (soft-prompt assembly, losses,
 * generation, ONNX export). Two levels:
 * - graph level: plain functions of (ops, params, inputs) that run on every backend (tfjs eagerly
 *   with autodiff, ONNX traced), written once per architecture (OPT in `opt/`, T5 in `t5/`);
 * - host level: a {@link DecodingSession} that generation drives one token at a time, so greedy and
 *   beam search are written once for every LM and every backend.
 *
 * Parameter names are HF names including the `language_model.` prefix of BLIP-2 checkpoints, e.g.
 * `language_model.model.decoder.layers.0.self_attn.q_proj.weight` (OPT) or
 * `language_model.encoder.block.0.layer.0.SelfAttention.q.weight` (T5).
 */

/** Token ids every LM declares (HF `text_config` / generation config), `undefined` when absent. */
export interface SpecialTokens {
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly pad: number | undefined;
  /** Encoder-decoder LMs: the first decoder token (T5: the pad id, 0). */
  readonly decoderStart: number | undefined;
}

/** Sizes of an LM that callers outside its module need. */
export interface LmShape {
  readonly vocabSize: number;
  /** Width of `inputs_embeds` (OPT: `word_embed_proj_dim`; T5: `d_model`). */
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Per-head width of cached keys/values. */
  readonly headDim: number;
}

/** One layer's cached self-attention keys and values, each [B, heads, S, headDim]. */
export interface KvPair<T> {
  readonly key: T;
  readonly value: T;
}

/** A KV cache: one entry per decoder layer. */
export type KvCache<T> = readonly KvPair<T>[];

/** Parameter name, shape (PyTorch layout) of one LM tensor, for loading and init. */
export interface LmParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * Host-level decoding state of a batch of `rows` sequences. Generation calls `prefill` once, then
 * `step` with one chosen token per row; beam search calls `reorder` to keep, drop or duplicate rows.
 * Logits are raw (no processors), float32 [rows, vocabSize], row-major.
 */
export interface DecodingSession {
  /** Current number of rows. */
  readonly rows: number;
  readonly vocabSize: number;
  /** Runs the prompt (soft prompt + text) and returns the logits of the next token of every row. */
  prefill(): Promise<Float32Array>;
  /** Appends `tokens[r]` to row r and returns the logits of the following token. */
  step(tokens: Int32Array): Promise<Float32Array>;
  /** New row i := old row `index[i]` (length = new row count). */
  reorder(index: Int32Array): void;
  /** Frees backend memory held by the session. */
  dispose(): void;
}

/** A language model usable as BLIP-2's frozen LM. Implemented by OPT and T5. */
export interface LanguageModel {
  readonly kind: 'decoder-only' | 'encoder-decoder';
  /** HF `model_type`, e.g. `opt`, `t5`. */
  readonly modelType: string;
  readonly shape: LmShape;
  readonly tokens: SpecialTokens;
  /** Every parameter the LM reads (names with the `language_model.` prefix). */
  paramSpecs(): readonly LmParamSpec[];
  /** Token embeddings: int ids [B, T] -> [B, T, hiddenSize] (scaled as HF does, if at all). */
  embed<T>(ops: Ops<T>, params: ParamStore<T>, ids: T): T;
}
