/**
 * `@qf/train/node`: the Node-only parts of `@qf/train` (atomic training checkpoints with exact
 * resume, JSONL metrics files, the terminal progress bar). Re-exports `@qf/train` too.
 * @packageDocumentation
 */
export * from './index.js';
export {
  type CheckpointSource,
  type CheckpointerOptions,
  type SaveTrainingCheckpointOptions,
  TRAINER_STATE_JSON,
  TRAINER_STATE_TENSORS,
  checkpointer,
  latestCheckpoint,
  loadTrainingCheckpoint,
  recoverTrainingCheckpoint,
  resumeTraining,
  saveTrainingCheckpoint,
} from './node/checkpoint.js';
export { type JsonlOptions, jsonlReporter } from './node/jsonl.js';
export { type ProgressMode, type ProgressOptions, progressReporter } from './node/progress.js';
