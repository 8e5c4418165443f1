import type { Backend } from '@qf/core';
import { createOnnxBackend } from '@qf/backends/onnx';
import { createTfjsBackend } from '@qf/backends/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';

/** One way to run the model: parity suites loop over these so every check runs on every backend. */
export interface BackendSetup {
  readonly name: string;
  readonly kind: 'tfjs' | 'onnx';
  create(): Promise<Backend<unknown>>;
  /** Frees what `create` made (sessions for onnx; tfjs has one global engine). */
  release(backend: Backend<unknown>): Promise<void>;
  /** Backend-held resources that must not grow across repeated runs (tensors, sessions). */
  liveResources(backend: Backend<unknown>): number;
}

const tfjs = (name: 'cpu' | 'wasm'): BackendSetup => ({
  name: `tfjs-${name}`,
  kind: 'tfjs',
  async create() {
    const b = await createTfjsBackend(name);
    if (tf.getBackend() !== name) throw new Error(`tfjs backend is ${tf.getBackend()}, wanted ${name}`);
    return b as Backend<unknown>;
  },
  release: async () => {},
  liveResources: () => tf.memory().numTensors,
});

const onnx = (fuseLinears: boolean): BackendSetup => ({
  name: fuseLinears ? 'onnx' : 'onnx (no linear fusion)',
  kind: 'onnx',
  create: async () => createOnnxBackend({ ort, intraOpNumThreads: 1, fuseLinears }) as Backend<unknown>,
  release: async (b) => (b as ReturnType<typeof createOnnxBackend>).dispose(),
  liveResources: (b) => (b as ReturnType<typeof createOnnxBackend>).sessionCount,
});

/** Every backend the parity suites cover in Node. */
export const ALL_SETUPS: readonly BackendSetup[] = [tfjs('cpu'), tfjs('wasm'), onnx(true), onnx(false)];
/** One setup per backend family (for the slower suites). */
export const FAMILY_SETUPS: readonly BackendSetup[] = [tfjs('cpu'), onnx(true)];
