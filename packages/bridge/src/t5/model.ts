import type { Backend, Ops, ParamStore } from '@qf/core';
import type { Checkpoint, HostTensor } from '@qf/io';
import type { LanguageModel, LmParamSpec, LmShape, SpecialTokens } from '../lm/types.js';
import { type T5Config, parseT5Config } from './config.js';
import { T5_GRAPH_KEYS, t5ForwardGraph, t5Root } from './graphs.js';
import {
  type LoadedT5Tensors,
  T5_DEFAULT_PREFIX,
  loadT5Tensors,
  resolveT5Tensors,
  t5ParamSpecs,
} from './params.js';
import { T5DecodingSession, type T5SessionInputs } from './session.js';
import {
  type T5DecoderInputs,
  type T5DecoderOutputs,
  t5EncoderMask,
  t5CrossKeyValues,
  t5Decoder,
  t5Encoder,
} from './stack.js';

/** Options of {@link T5LanguageModel}. */
export interface T5ModelOptions {
  /** Prefix of the LM's parameter names (default `language_model.`, BLIP-2's; `''` for bare T5). */
  readonly prefix?: string;
}

/** Inputs of {@link T5LanguageModel.forward} (graph tensors). */
export interface T5ForwardInputs<T> {
  /** [B, S, d_model] */
  readonly inputsEmbeds: T;
  /** [B, S] 0/1, or undefined when nothing is padded. */
  readonly attentionMask?: T | undefined;
  /** [B, L] int: HF `decoder_input_ids` (= shift_right(labels) when training). */
  readonly decoderInputIds: T;
}

/**
 * HF `T5ForConditionalGeneration` (T5, T5 v1.1, FlanT5) as BLIP-2's frozen encoder-decoder LM.
 * Graph level: {@link embed}, {@link encode}, {@link crossKeyValues}, {@link decode}, {@link forward}
 * (plain functions over the op interface, so they run eagerly with autodiff on tfjs and traced on
 * ONNX). Host level: {@link session} gives a {@link T5DecodingSession} for generation and
 * {@link run} the teacher-forced logits.
 * @example
 * ```ts
 * const config = parseModelConfig(dir.config);
 * const lm = T5LanguageModel.fromTextConfig(config.text?.raw);
 * const { tensors } = await lm.loadTensors(dir.checkpoint);
 * const params = backend.createParams(tensors);
 * const session = lm.session(backend, params, { softPrompt, inputIds, attentionMask });
 * const firstLogits = await session.prefill();
 * ```
 */
export class T5LanguageModel implements LanguageModel {
  readonly kind = 'encoder-decoder' as const;
  readonly modelType: string;
  readonly config: T5Config;
  readonly shape: LmShape;
  readonly tokens: SpecialTokens;
  readonly prefix: string;

  /**
   * @param textConfig the raw `text_config` JSON (`parseModelConfig(...).text.raw`) or a parsed
   *   {@link T5Config}
   * @throws ConfigError naming the bad field
   */
  constructor(textConfig: unknown, options: T5ModelOptions = {}) {
    const cfg = isT5Config(textConfig) ? textConfig : parseT5Config(textConfig);
    this.config = cfg;
    this.modelType = cfg.modelType;
    this.prefix = options.prefix ?? T5_DEFAULT_PREFIX;
    this.shape = {
      vocabSize: cfg.vocabSize,
      hiddenSize: cfg.dModel,
      numLayers: cfg.numDecoderLayers,
      numHeads: cfg.numHeads,
      headDim: cfg.dKv,
    };
    this.tokens = {
      bos: cfg.bosTokenId,
      eos: cfg.eosTokenId,
      pad: cfg.padTokenId,
      decoderStart: cfg.decoderStartTokenId,
    };
  }

  /**
   * From the raw `text_config` JSON (`parseModelConfig(json).text.raw`).
   * @throws ConfigError naming the bad field (`text_config.<field>`)
   */
  static fromTextConfig(raw: unknown, prefix: string = T5_DEFAULT_PREFIX): T5LanguageModel {
    return new T5LanguageModel(parseT5Config(raw), { prefix });
  }

  paramSpecs(): readonly LmParamSpec[] {
    return t5ParamSpecs(this.config, this.prefix);
  }

  /** The parameters scoped to the T5 root (names without the prefix). */
  root<T>(params: ParamStore<T>): ParamStore<T> {
    return t5Root(params, this.prefix);
  }

  /** Token embeddings `shared[ids]`: int [B, T] -> [B, T, d_model] (T5 does not scale them). */
  embed<T>(ops: Ops<T>, params: ParamStore<T>, ids: T): T {
    return ops.gather(params.get(`${this.prefix}shared.weight`), ids);
  }

  /** The encoder: [B, S, d_model] (+ [B, S] mask) -> last hidden state [B, S, d_model]. */
  encode<T>(ops: Ops<T>, params: ParamStore<T>, inputsEmbeds: T, attentionMask?: T): T {
    return t5Encoder(ops, this.config, this.root(params), inputsEmbeds, attentionMask);
  }

  /** Cross-attention K/V of every decoder block from the encoder output (see `t5CrossKeyValues`). */
  crossKeyValues<T>(ops: Ops<T>, params: ParamStore<T>, encoderHidden: T) {
    return t5CrossKeyValues(ops, this.config, this.root(params), encoderHidden);
  }

  /** The additive encoder mask [B, 1, 1, S] for {@link decode} from a [B, S] 0/1 mask. */
  encoderMask<T>(ops: Ops<T>, attentionMask: T): T {
    return t5EncoderMask(ops, attentionMask);
  }

  /** Decoder + LM head with an optional self-attention cache (see `t5Decoder`). */
  decode<T>(ops: Ops<T>, params: ParamStore<T>, inputs: T5DecoderInputs<T>): T5DecoderOutputs<T> {
    return t5Decoder(ops, this.config, this.root(params), inputs);
  }

  /** Teacher-forced pass: encoder, then the decoder over `decoderInputIds` -> logits [B, L, V]. */
  forward<T>(
    ops: Ops<T>,
    params: ParamStore<T>,
    inputs: T5ForwardInputs<T>,
  ): { encoderHidden: T; logits: T } {
    const encoderHidden = this.encode(ops, params, inputs.inputsEmbeds, inputs.attentionMask);
    const { logits } = this.decode(ops, params, {
      ids: inputs.decoderInputIds,
      cross: this.crossKeyValues(ops, params, encoderHidden),
      encoderMask: inputs.attentionMask ? t5EncoderMask(ops, inputs.attentionMask) : undefined,
    });
    return { encoderHidden, logits };
  }

  /**
   * Runs {@link forward} on a backend (graph `t5:forward`) from host tensors: `inputs_embeds`
   * [B, S, D], `attention_mask` [B, S], `decoder_input_ids` [B, L] -> `encoder_last_hidden_state`,
   * `logits` [B, L, V].
   */
  run<T>(
    backend: Backend<T>,
    params: ParamStore<T>,
    inputs: { inputs_embeds: HostTensor; attention_mask: HostTensor; decoder_input_ids: HostTensor },
  ): Promise<Record<'encoder_last_hidden_state' | 'logits', HostTensor>> {
    return backend.run(
      T5_GRAPH_KEYS.forward,
      t5ForwardGraph(this.config, this.root(params)),
      inputs,
    ) as Promise<Record<'encoder_last_hidden_state' | 'logits', HostTensor>>;
  }

  /**
   * A decoding session over the given encoder inputs: `{ softPrompt, inputIds, attentionMask }` as
   * BLIP-2 builds them, or ready `{ inputsEmbeds, attentionMask }` (see {@link T5DecodingSession}).
   */
  session<T>(backend: Backend<T>, params: ParamStore<T>, inputs: T5SessionInputs): T5DecodingSession<T> {
    return new T5DecodingSession(backend, this.root(params), this.config, inputs);
  }

  /** Reads the LM's tensors from a checkpoint, resolving tied embeddings (see `loadT5Tensors`). */
  loadTensors(checkpoint: Checkpoint, options: { strict?: boolean } = {}): Promise<LoadedT5Tensors> {
    return loadT5Tensors(checkpoint, this.config, { prefix: this.prefix, strict: options.strict ?? false });
  }

  /** Picks the LM's tensors out of an in-memory map, resolving tied embeddings. */
  resolveTensors(all: ReadonlyMap<string, HostTensor>, options: { strict?: boolean } = {}): LoadedT5Tensors {
    return resolveT5Tensors(all, this.config, { prefix: this.prefix, strict: options.strict ?? false });
  }
}

function isT5Config(v: unknown): v is T5Config {
  return typeof v === 'object' && v !== null && 'dModel' in v && 'relativeAttentionNumBuckets' in v;
}
