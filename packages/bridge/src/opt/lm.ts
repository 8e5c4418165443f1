import { type Backend, type Ops, type ParamStore, scoped } from '@qf/core';
import type { Checkpoint } from '@qf/io';
import type { LanguageModel, LmParamSpec, LmShape, SpecialTokens } from '../lm/types.js';
import { type OptConfig, parseOptConfig } from './config.js';
import {
  type OptForwardInputs,
  type OptForwardOptions,
  type OptForwardOutputs,
  optEmbed,
  optForward,
} from './model.js';
import { LM_PREFIX, type LoadedOptTensors, loadOptTensors, optParamSpecs } from './params.js';
import { type DecoderOnlyPrompt, OptDecodingSession } from './session.js';

/**
 * HF OPT (`OPTForCausalLM`) as BLIP-2's frozen decoder-only LM. Parameters are read from a store
 * keyed by HF names with `prefix` (default `language_model.`), e.g.
 * `language_model.model.decoder.layers.0.self_attn.q_proj.weight`.
 * @example
 * ```ts
 * const lm = OptLanguageModel.fromTextConfig(parseModelConfig(json).text!.raw);
 * const params = backend.createParams((await lm.loadTensors(checkpoint)).tensors);
 * const session = lm.session(backend, params, { softPrompt, inputIds, attentionMask });
 * ```
 */
export class OptLanguageModel implements LanguageModel {
  readonly kind = 'decoder-only' as const;
  readonly modelType = 'opt';
  readonly shape: LmShape;
  readonly tokens: SpecialTokens;

  constructor(
    readonly config: OptConfig,
    readonly prefix: string = LM_PREFIX,
  ) {
    this.shape = {
      vocabSize: config.vocabSize,
      hiddenSize: config.wordEmbedProjDim,
      numLayers: config.numHiddenLayers,
      numHeads: config.numAttentionHeads,
      headDim: config.hiddenSize / config.numAttentionHeads,
    };
    this.tokens = {
      bos: config.bosTokenId,
      eos: config.eosTokenIds[0],
      pad: config.padTokenId,
      decoderStart: undefined,
    };
  }

  /**
   * From the raw `text_config` JSON (`parseModelConfig(json).text.raw`).
   * @throws ConfigError naming the bad field (`text_config.<field>`)
   */
  static fromTextConfig(raw: unknown, prefix: string = LM_PREFIX): OptLanguageModel {
    return new OptLanguageModel(parseOptConfig(raw), prefix);
  }

  paramSpecs(): readonly LmParamSpec[] {
    return optParamSpecs(this.config, this.prefix);
  }

  /** Reads this LM's tensors from a checkpoint (tied `lm_head`/`embed_tokens`: either may be stored). */
  loadTensors(checkpoint: Checkpoint): Promise<LoadedOptTensors> {
    return loadOptTensors(checkpoint, this.config, this.prefix);
  }

  embed<T>(ops: Ops<T>, params: ParamStore<T>, ids: T): T {
    return optEmbed(ops, scoped(params, this.prefix), ids);
  }

  /** The decoder + LM head on the op interface (see {@link optForward}). */
  forward<T>(
    ops: Ops<T>,
    params: ParamStore<T>,
    inputs: OptForwardInputs<T>,
    options: OptForwardOptions = {},
  ): OptForwardOutputs<T> {
    return optForward(ops, scoped(params, this.prefix), this.config, inputs, options);
  }

  /** A host-level decoding session over `backend` (see {@link OptDecodingSession}). */
  session<T>(backend: Backend<T>, params: ParamStore<T>, prompt: DecoderOnlyPrompt): OptDecodingSession<T> {
    return new OptDecodingSession(this, backend, params, prompt);
  }
}
