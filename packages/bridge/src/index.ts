/**
 * @qf/bridge — from Q-Former outputs to a frozen language model: the projector (soft prompt),
 * prompt and label assembly, built-in OPT and T5 with HF names, and generation.
 * @packageDocumentation
 */
export type {
  DecodingSession,
  KvCache,
  KvPair,
  LanguageModel,
  LmParamSpec,
  LmShape,
  SpecialTokens,
} from './lm/types.js';
