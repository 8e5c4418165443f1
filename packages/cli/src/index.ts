/**
 * `@qf/cli`: the `qf` command (run, inspect, demo, export-onnx) and its pieces, usable in-process.
 * @packageDocumentation
 */
export { buildProgram, main } from './program.js';
export { type CliStreams, memoryStreams, processStreams } from './streams.js';
export { CliError, type CliErrorCode, describeError } from './errors.js';
export {
  CLI_BACKENDS,
  type CliBackendName,
  DEFAULT_ONNX_THREADS,
  type OpenBackendOptions,
  closeBackend,
  importOnnxRuntime,
  openBackend,
} from './backend.js';
export {
  type ExportBlip2OnnxResult,
  type ExportOnnxOptions,
  type ExportOnnxResult,
  type ExportedBlip2File,
  type ExportedFile,
  BLIP2_CLI_PARTS,
  ONNX_MANIFEST,
  exportBlip2Onnx,
  exportOnnx,
  exportOnnxCommand,
  formatExport,
  parseParts,
} from './export-onnx.js';
export { type RunCommandOptions, type RunResult, runCommand, runModel } from './run.js';
export { BLIP2_RUN_INPUTS, type RunBlip2Options, asWritten, runBlip2 } from './run-blip2.js';
export {
  type CaptionCommandOptions,
  type CaptionEntry,
  type CaptionResult,
  captionCommand,
  captionImagesInDir,
} from './caption.js';
export {
  type CheckpointParts,
  type ConfigReport,
  type InspectReport,
  type ModelDirReport,
  type SafetensorsReport,
  type TensorRow,
  checkpointParts,
  inspectPath,
} from './inspect.js';
export { formatInspect } from './inspect-format.js';
export { type ConfigSummary, summarizeConfig } from './config-summary.js';
export { type DemoOptions, type DemoResult, demoCommand, runDemo } from './demo.js';
export { demoConfig, demoConfigJson, demoSpec } from './demo-model.js';
export { type DemoBatch, type DemoDataShape, makeDemoBatch } from './demo-data.js';
export { VERSION } from './version.js';
