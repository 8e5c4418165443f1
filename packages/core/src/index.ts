/**
 * @qf/core — the backend-agnostic op interface and BLIP-2's Q-Former as plain functions over it.
 * @packageDocumentation
 */
export type { Ops } from './ops.js';
export type { Backend, GraphFn } from './backend.js';
export { type ParamStore, paramStore, scoped } from './params.js';
export { Rng } from './rng.js';
export { type QFormerModelSpec, type ParamSpec, type ParamKind, qformerParamSpecs } from './spec.js';
export { type InitScheme, type InitOptions, initParams } from './init.js';
export { type LayerShape, layerShape, hasCrossAttention } from './qformer/shape.js';
export { multiHeadAttention, attentionBlock, denseResidualNorm } from './qformer/attention.js';
export { textEmbeddings, queryTokens, concatInputs } from './qformer/embeddings.js';
export { type ImageContext, type RowLayout, qformerLayer, feedForward } from './qformer/layer.js';
export { type QFormerPassInputs, type QFormerPassOutputs, qformerEncoder } from './qformer/encoder.js';
export {
  SELF_ATTENTION_FILL,
  CROSS_ATTENTION_FILL,
  type Stage1Pattern,
  paddingMask,
  additiveMask,
  bidirectionalMask,
  stage1Keep,
} from './masks.js';
export {
  l2Normalize,
  imageFeatures,
  textFeature,
  itcSimilarity,
  itmLogits,
  languageProjection,
} from './heads.js';
export {
  type QFormerInputName,
  type QFormerOutputName,
  type QFormerGraphOptions,
  graphKey,
  qformerGraph,
} from './graph.js';
export { type ValidateOptions, validateQFormerInputs } from './inputs.js';
export {
  type QFormerModelConfig,
  type LoadOptions,
  type LoadedQFormer,
  loadQFormerTensors,
  readParamTensor,
} from './load.js';
export { type RunOptions, QFormerModel } from './model.js';
export { qformerModelConfig, qformerModelConfigFromJson } from './config.js';
export { type LoadCheckpointOptions, loadQFormer } from './load-checkpoint.js';
export { type VisionShape, VISION_PREFIX, visionShape, visionParamSpecs } from './vision/spec.js';
export { patchEmbedding, visionEmbeddings } from './vision/embeddings.js';
export { visionAttention, visionMlp, visionEncoderLayer } from './vision/layer.js';
export { type VisionTowerOutputs, visionTower } from './vision/tower.js';
export {
  type VisionInputName,
  type VisionOutputName,
  type VisionGraphOptions,
  visionGraphKey,
  visionGraph,
} from './vision/graph.js';
export { validateVisionInputs } from './vision/inputs.js';
export { type LoadedVision, loadVisionTensors } from './vision/load.js';
export { VisionModel } from './vision/model.js';
export {
  type RawImage,
  type ResampleFilter,
  PRECISION_BITS,
  checkRawImage,
  resizeImage,
} from './image/resample.js';
export {
  type PreprocessOptions,
  CLIP_MEAN,
  CLIP_STD,
  toRgb,
  preprocessImage,
  preprocessImages,
} from './image/preprocess.js';
export {
  type LossFn,
  type GradResult,
  type ParamAssignment,
  type TrainingBackend,
  BackendUnsupportedError,
  requireTraining,
} from './backend.js';
export { itgTextKeep } from './masks.js';
export {
  type CrossEntropyOptions,
  type CrossEntropyTargets,
  type PrepareTargetsOptions,
  crossEntropy,
  crossEntropyFromTargets,
  logSoftmax,
  logSumExp,
  prepareCrossEntropyTargets,
  softCrossEntropy,
} from './cross-entropy.js';
