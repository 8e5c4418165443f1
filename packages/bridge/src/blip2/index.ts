/**
 * Whole BLIP-2 / InstructBLIP models (HF `Blip2ForConditionalGeneration`,
 * `InstructBlipForConditionalGeneration`): pixels to captions on any backend.
 */
export { type Blip2ErrorCode, Blip2Error } from './errors.js';
export {
  type Blip2LanguageModel,
  type LmGenerationDefaults,
  blip2Config,
  blip2LanguageModel,
  lmGenerationDefaults,
} from './config.js';
export {
  BLIP2_INPUTS,
  type Blip2GraphOptions,
  blip2DecoderOnlyForwardGraph,
  blip2EncoderDecoderForwardGraph,
  blip2GraphKey,
  blip2ImageGraph,
  blip2QFormerProjectorGraph,
} from './graphs.js';
export { type Blip2Inputs, type CheckedInputs, shiftRight, validateBlip2Inputs } from './inputs.js';
export {
  type Blip2LoadOptions,
  type LoadedBlip2,
  blip2ParamShapes,
  blip2QFormerSpec,
  checkBlip2Tensors,
  checkFullModel,
  loadBlip2Tensors,
} from './load.js';
export {
  type Blip2GenerateOptions,
  type Blip2GenerateResult,
  blip2GenerateOptions,
  lmEos,
} from './generation.js';
export { type Blip2Caption, type Blip2CaptionOptions, type CaptionModel, captionImages } from './caption.js';
export {
  type Blip2ForwardOptions,
  type Blip2ForwardOutputs,
  Blip2Model,
} from './model.js';
