/**
 * `@qf/io/node`: Node-only file access (file byte source, atomic writes, checkpoint directories).
 * Re-exports the browser-safe API of `@qf/io` too.
 */
export * from '../index.js';
export { fileSource } from './file-source.js';
export { atomicWriteFile, atomicWriteFileWith, fsyncDir, writeAll } from './atomic.js';
export {
  type WriteCheckpointOptions,
  recoverCheckpointDir,
  writeCheckpointDir,
  writeSafetensorsFile,
} from './write.js';
export {
  type CheckpointDir,
  openCheckpointDir,
  openSafetensors,
  openShardedSafetensors,
} from './checkpoint-dir.js';
export { type DecodeImageOptions, decodeImage, decodeImageFile } from './image.js';
