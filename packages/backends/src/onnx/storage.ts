import type { BuiltGraph } from './build.js';

/**
 * Host storage for the ONNX backend's weights and graph files, injected like the runtime (Node:
 * `tempFileStorage()` from `@qf/backends/onnx/node`). With a storage, parameters are written out when
 * created and read back one tensor at a time only while a graph is encoded, and sessions are created
 * from a model file with external data instead of an in-memory protobuf. The process then holds about
 * one copy of the weights (ONNX Runtime's) instead of the JS copy, the encoded model and ORT's copy.
 */
export interface OnnxStorage {
  /** Keeps a copy of `data` (the caller may drop its own); returns a function reading it back. */
  putParam(data: Float32Array): () => Float32Array;
  /** Writes `graph` with its weights as external data; returns the model path to open. */
  writeModel(graph: BuiltGraph): Promise<string>;
  /** Deletes a model written by {@link writeModel} (called once its session exists). */
  removeModel(path: string): Promise<void>;
  /** Deletes everything this storage wrote. */
  dispose(): Promise<void>;
}
