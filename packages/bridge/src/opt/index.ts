export {
  type OptActivation,
  type OptConfig,
  OPT_ACTIVATIONS,
  OPT_DEFAULTS,
  parseOptConfig,
} from './config.js';
export {
  LM_PREFIX,
  OPT_NAMES,
  OPT_POSITION_OFFSET,
  type LoadedOptTensors,
  hasFinalLayerNorm,
  hasProjections,
  loadOptTensors,
  optParamSpecs,
} from './params.js';
export {
  OPT_MASK_FILL,
  type OptForwardInputs,
  type OptForwardOptions,
  type OptForwardOutputs,
  lastPosition,
  optActivation,
  optAttentionMask,
  optDecoderLayer,
  optEmbed,
  optForward,
  optSelfAttention,
} from './model.js';
export { type PositionMode, optPositionIds } from './positions.js';
export { type DecoderOnlyPrompt, OptDecodingSession, optPrefillGraph, optStepGraph } from './session.js';
export { OptLanguageModel } from './lm.js';
