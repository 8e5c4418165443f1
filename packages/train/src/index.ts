/**
 * @qf/train — training on any backend with autodiff (today `@qf/backends/tfjs`): on-device AdamW
 * with PyTorch semantics and LAVIS's weight-decay split, LAVIS learning-rate schedules, gradient
 * clipping, and BLIP-2's stage-1 / stage-2 trainers. Browser-safe; checkpoints, JSONL logs and the
 * terminal progress bar live in `@qf/train/node`.
 * @packageDocumentation
 */
export { type TrainErrorCode, TrainError } from './errors.js';
export { type AdamWOptions, type AdamWState, type DecayRule, AdamW, lavisDecay } from './optim/adamw.js';
export {
  type ConstantSpec,
  type LavisWarmupCosineSpec,
  type Schedule,
  type ScheduleSpec,
  type WarmupCosineOptions,
  type WarmupCosineSpec,
  constantLr,
  cosineLr,
  lavisWarmupCosine,
  scheduleFromSpec,
  warmupCosine,
  warmupLr,
} from './optim/schedule.js';
export { clipGradNorm, gradNorm } from './optim/clip.js';
export type {
  DataSource,
  DataState,
  EvalMetrics,
  StepMetrics,
  TrainReporter,
  TrainSummary,
  TrainerSnapshot,
  TrainerStateJson,
} from './trainer/types.js';
export { BatchReader, stepRng } from './trainer/data.js';
export { type StepGrads, type TrainerOptions, Trainer, sameBytes } from './trainer/base.js';
export { type Stage1TrainerOptions, Stage1Trainer, TEMPERATURE_RANGE } from './trainer/stage1.js';
export {
  type Stage2Batch,
  type Stage2TrainerOptions,
  Stage2Trainer,
  prepareStage2Inputs,
  softPromptGraph,
  stage2Loss,
} from './trainer/stage2.js';
