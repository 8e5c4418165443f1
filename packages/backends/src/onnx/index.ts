/**
 * @qf/backends/onnx — the @qf/core op interface recorded into ONNX graphs, run by an injected
 * onnxruntime module (onnxruntime-node in Node, onnxruntime-web in browsers), and exported as files.
 * @packageDocumentation
 */
export {
  type GraphOptimizationLevel,
  type OnnxBackendOptions,
  OnnxBackend,
  createOnnxBackend,
} from './backend.js';
export { type OnnxErrorCode, OnnxBackendError } from './errors.js';
export { type OrtModule, toOrtTensor, fromOrtTensor } from './ort.js';
export { type ElemType, Sym } from './trace.js';
export { type InputSpec, type Recording, Recorder } from './record.js';
export {
  type BuildOptions,
  type BuiltGraph,
  type ExternalLayout,
  OPSET,
  buildGraph,
  encodeInline,
  encodeModelPartsInline,
  encodeExternal,
} from './build.js';
export {
  type QFormerPart,
  type ExportOptions,
  type ExportedPart,
  QFORMER_PARTS,
  RERANK_TEXT_AXIS,
  IO_DOCS,
  exportQFormerGraphs,
  supportedParts,
} from './export.js';
export type { WeightFormat } from './weights.js';
export type { OnnxStorage } from './storage.js';
export { onnxOps } from './ops.js';
export {
  type Blip2OnnxPart,
  type Blip2PartGroup,
  type Blip2GraphSource,
  type IoDecl,
  BLIP2_GRAPH_KEYS,
  BLIP2_IO_DOCS,
  BLIP2_LM_PARTS,
  BLIP2_PART_GROUPS,
  blip2IoDoc,
  qformerProjectorKey,
} from './blip2-parts.js';
export {
  type Blip2ExportOptions,
  type Blip2ExportedPart,
  type Blip2Io,
  type Blip2OnnxManifest,
  type Blip2OnnxSource,
  type Blip2WeightFormat,
  blip2Manifest,
  exportBlip2Graphs,
  resolveBlip2Parts,
} from './export-blip2.js';
export {
  type OnnxFileBackendOptions,
  Blip2OnnxRunner,
  OnnxFileBackend,
} from './blip2-runner.js';
