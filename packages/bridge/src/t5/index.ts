/**
 * T5 / FlanT5 (HF `T5ForConditionalGeneration`) as BLIP-2's encoder-decoder language model.
 */
export { type T5Activation, type T5Config, parseT5Config } from './config.js';
export { T5_MASK_FILL, t5BucketTable, t5PositionBias, relativePositionBucket } from './buckets.js';
export { geluTanh, rmsNorm } from './layers.js';
export {
  type T5DecoderInputs,
  type T5DecoderOutputs,
  t5EncoderMask,
  t5CrossKeyValues,
  t5Decoder,
  t5Encoder,
} from './stack.js';
export {
  type LoadedT5Tensors,
  type T5LoadOptions,
  type T5TensorPlan,
  T5_DEFAULT_PREFIX,
  T5_EMBEDDING_NAMES,
  loadT5Tensors,
  planT5Tensors,
  resolveT5Tensors,
  t5ParamSpecs,
} from './params.js';
export {
  T5_GRAPH_KEYS,
  crossName,
  pastName,
  presentName,
  t5DecoderGraph,
  t5EncoderGraph,
  t5ForwardGraph,
  t5Root,
} from './graphs.js';
export {
  type T5EmbedsInput,
  type T5PromptInput,
  type T5SessionInputs,
  T5DecodingSession,
} from './session.js';
export { type T5ForwardInputs, type T5ModelOptions, T5LanguageModel } from './model.js';
