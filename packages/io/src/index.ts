/**
 * `@qf/io`: bytes <-> named tensors for qformer-ts. Browser-safe: safetensors reading (lazy, from
 * memory, Blob or URL) and writing, sharded checkpoints, BLIP-2 config parsing and checkpoint name
 * maps. Node file access lives in `@qf/io/node`.
 */
export {
  CheckpointError,
  ConfigError,
  QfError,
  SafetensorsError,
  SourceError,
  TensorError,
  fmtShape,
} from './errors.js';
export {
  DTYPES,
  DTYPE_BYTES,
  type DType,
  type DTypeArrays,
  type FloatDType,
  type HostTensor,
  type IntDType,
  allocTypedArray,
  arrayTypeName,
  bf16ArrayToF32,
  bf16ToF32,
  checkShape,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
  fromFloat32,
  hostTensor,
  isArrayOfDType,
  isDType,
  isFloatDType,
  numel,
  toFloat32,
  toInt32,
  typedArrayView,
} from './dtypes.js';
export { bf16BitsToF32Bits, f16BitsToF32Bits, f32BitsToBf16Bits, f32BitsToF16Bits } from './half.js';
export { HOST_LITTLE_ENDIAN, typedArrayFromBytes, typedArrayToBytes } from './bytes.js';
export {
  type ByteSource,
  type ByteSourceInput,
  type FetchLike,
  type FetchResponseLike,
  type UrlSourceOptions,
  blobSource,
  bufferSource,
  checkReadLength,
  checkReadRange,
  toByteSource,
  urlSource,
} from './sources/index.js';
export {
  MAX_HEADER_BYTES,
  type SafetensorsHeader,
  type TensorInfo,
  decodeHeaderText,
  parseSafetensorsHeader,
  readHeaderLength,
} from './safetensors/header.js';
export { SafetensorsFile } from './safetensors/file.js';
export {
  HF_PT_METADATA,
  type PlannedTensor,
  type SafetensorsPlan,
  planSafetensors,
  plannedTensorBytes,
  serializeSafetensors,
} from './safetensors/writer.js';
export type { Checkpoint, ReadOptions } from './checkpoint/types.js';
export { type ShardIndex, isSafeShardName, parseShardIndex } from './checkpoint/index-json.js';
export { type OpenShard, ShardedCheckpoint } from './checkpoint/sharded.js';
export { type ShardPlan, planShards } from './checkpoint/shard-plan.js';
export { type OpenedCheckpoint, openCheckpointUrl } from './checkpoint/url.js';
export {
  QFORMER_DEFAULTS,
  type QFormerConfig,
  type QFormerParseOptions,
  parseQFormerConfig,
} from './config/qformer.js';
export { VISION_DEFAULTS, type VisionConfig, parseVisionConfig } from './config/vision.js';
export { type TextConfig, parseTextConfig } from './config/text.js';
export {
  type Blip2Config,
  type ModelConfig,
  type QFormerStandaloneConfig,
  isBlip2Config,
  parseBlip2Config,
  parseModelConfig,
  parseQFormerStandalone,
} from './config/blip2.js';
export { stringifyHfConfig, toHfConfigJson } from './config/hf-json.js';
export { QFORMER_EMBEDDING_NAMES, isCanonicalName, qformerLayerPrefix } from './names/canonical.js';
export {
  type CheckpointLayout,
  type NameMapping,
  detectCheckpointLayout,
  fromCanonicalName,
  mapCheckpointNames,
  toCanonicalName,
} from './names/layouts.js';
export { type DecodedImage, ImageError, interleavedToRgb } from './image/types.js';
export { decodeImageBlob } from './image/blob.js';
