/**
 * @qf/backends/tfjs — the @qf/core op interface and Backend on TensorFlow.js.
 * @packageDocumentation
 */
export { tfjsOps } from './ops.js';
export { TfjsBackend } from './backend.js';
export { type TfjsBackendName, type TfjsBackendOptions, createTfjsBackend } from './create.js';
export { upload, download } from './convert.js';
