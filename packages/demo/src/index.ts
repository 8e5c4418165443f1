/**
 * @qf/demo — the built-in `shapes` recipe: a miniature BLIP-2 trained end to end on CPU from a seed,
 * with no downloads (frozen ViT image encoder and OPT LM pre-trained in the recipe, Q-Former stage 1
 * and stage 2, retrieval and captioning figures, an HF checkpoint directory). Node only.
 * @packageDocumentation
 */
export { type DemoErrorCode, DemoError } from './errors.js';
export { type DemoSizes, DEFAULT_SIZES, demoConfig, demoConfigJson } from './config.js';
export {
  type DemoBackendName,
  type PhaseOptions,
  type ShapesDemoInput,
  type ShapesDemoOptions,
  DEFAULT_OPTIONS,
  DEMO_BACKENDS,
  QUICK_OPTIONS,
  resolveDemoOptions,
} from './options.js';
export {
  type DemoData,
  type SplitTensors,
  MAX_WORDS,
  TEXT_LENGTH,
  TOKENS,
  demoData,
  headRows,
  lmDecode,
  lmTokens,
  qformerTokens,
  splitTensors,
} from './data.js';
export { PATCH_SLOTS, SLOTS, SLOT_WIDTH, patchLabels, slotLabels } from './aux.js';
export {
  type EncoderAccuracy,
  type EncoderTrainOptions,
  AUX_HEAD,
  AUX_PATCH_HEAD,
  encodeImages,
  encoderAccuracy,
  encoderParamSpecs,
  initEncoder,
  pretrainEncoder,
} from './encoder.js';
export { type LmTrainOptions, initLm, lmParamSpecs, lmPerplexity, pretrainLm } from './lm.js';
export {
  type StageOptions,
  type Stage2Options,
  featureRows,
  initQFormer,
  qformerSpec,
  softPrompt,
  stage1Trainable,
  stage2Trainable,
  trainStage1,
  trainStage2,
} from './qformer.js';
export {
  type SimMatrix,
  exactMatch,
  rankOf,
  recallAtK,
  rerankTopK,
  tokenAccuracy,
  topK,
  transpose,
} from './metrics.js';
export {
  type CaptionSample,
  type DemoFigures,
  type EvaluateOptions,
  type RetrievalFigures,
  type TargetCheck,
  DEMO_TARGETS,
  checkTargets,
  evaluateSplit,
} from './evaluate.js';
export {
  type DemoCheckpoint,
  DEMO_FILES,
  commitStaged,
  preprocessorConfig,
  stageCheckpoint,
  writeFigures,
} from './checkpoint.js';
export { type PhaseRun, Batcher, tailMean, trainPhase } from './loop.js';
export { type DemoReporter, type PhaseReporter, silentReporter } from './report.js';
export { type ProgressOptions, progressReporter } from './progress.js';
export { type DemoTimings, type ShapesDemoResult, demoJson, runShapesDemo } from './run.js';
