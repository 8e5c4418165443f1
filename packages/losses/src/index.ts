/**
 * @qf/losses — BLIP-2's stage-1 objectives (ITC, ITM with hard negatives, ITG) and a generic
 * cross-entropy, written against the @qf/core op interface: they run on every backend, and train
 * wherever the backend answers `valueAndGrad` (tfjs).
 * @packageDocumentation
 */
export { type LossErrorCode, LossError } from './errors.js';
/** The generic cross-entropy lives in @qf/core (shared with @qf/bridge); re-exported here. */
export {
  type CrossEntropyTargets,
  type CrossEntropyOptions,
  type PrepareTargetsOptions,
  logSoftmax,
  prepareCrossEntropyTargets,
  crossEntropyFromTargets,
  crossEntropy,
  softCrossEntropy,
} from '@qf/core';
export { STAGE1_NAMES, lmHeadLogits } from './lm-head.js';
export {
  type Stage1ParamSpec,
  type Stage1InitOptions,
  type Stage1LoadOptions,
  type LoadedStage1,
  INITIAL_TEMPERATURE,
  checkStage1Spec,
  stage1ExtraParamSpecs,
  stage1ParamSpecs,
  initStage1Params,
  loadStage1Tensors,
  stage1CheckpointTensors,
} from './params.js';
export {
  type Stage1Batch,
  type Stage1Negatives,
  type Stage1TextOptions,
  type Stage1InputName,
  type Stage1Inputs,
  type PrepareStage1Options,
  checkStage1Batch,
  stage1Positives,
  itcTargets,
  prepareStage1Inputs,
  itgLabels,
} from './batch.js';
export { sampleHardNegatives } from './negatives.js';
export {
  type Stage1Part,
  type Stage1OutputName,
  type Stage1LossOptions,
  stage1GraphKey,
  stage1Loss,
  stage1Graph,
} from './stage1.js';
export {
  type SampledNegatives,
  type Stage1StepOptions,
  type Stage1LossName,
  sampleStage1Negatives,
  stage1ValueAndGrad,
} from './step.js';
