import * as tf from '@tensorflow/tfjs-core';
import { TfjsBackend } from './backend.js';

/**
 * tfjs backends: `cpu` (plain JS, everywhere), `wasm` (XNNPACK/SIMD, Node and browsers), `webgl` and
 * `webgpu` (browsers), `tensorflow` (tfjs-node, when installed). `auto` picks tensorflow if
 * `@tensorflow/tfjs-node` can be imported, else wasm, else cpu.
 */
export type TfjsBackendName = 'auto' | 'cpu' | 'wasm' | 'webgl' | 'webgpu' | 'tensorflow';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

async function register(name: Exclude<TfjsBackendName, 'auto'>): Promise<void> {
  switch (name) {
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      return;
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      return;
    case 'webgl':
      await import('@tensorflow/tfjs-backend-webgl');
      return;
    case 'webgpu':
      await import('@tensorflow/tfjs-backend-webgpu');
      return;
    case 'tensorflow':
      // Optional peer: not a dependency because its install downloads libtensorflow.
      await import(/* @vite-ignore */ ['@tensorflow', 'tfjs-node'].join('/'));
      return;
  }
}

/** Registers and activates one backend; returns why it failed, or undefined on success. */
async function tryActivate(name: Exclude<TfjsBackendName, 'auto'>): Promise<string | undefined> {
  try {
    await register(name);
    return (await tf.setBackend(name)) ? undefined : 'tf.setBackend returned false';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Options of {@link createTfjsBackend}. */
export interface TfjsBackendOptions {
  /** Number of threads for the wasm backend (where threads are available). */
  readonly wasmThreads?: number;
  /**
   * Keep [in, out] copies of parameter weights used by `linear` (default true): much faster matMul
   * on wasm, at the cost of holding those weights twice.
   */
  readonly transposedWeights?: boolean;
}

/**
 * Activates a tfjs backend and returns the @qf/core Backend for it. tfjs has one active backend per
 * process: the last call wins.
 * @throws Error naming the backend when it cannot be activated here.
 */
export async function createTfjsBackend(
  name: TfjsBackendName = 'auto',
  options: TfjsBackendOptions = {},
): Promise<TfjsBackend> {
  if (options.wasmThreads !== undefined && name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setThreadsCount(options.wasmThreads);
  }
  const order: Exclude<TfjsBackendName, 'auto'>[] =
    name === 'auto' ? (isNode ? ['tensorflow', 'wasm', 'cpu'] : ['webgpu', 'webgl', 'wasm', 'cpu']) : [name];
  const failures: string[] = [];
  for (const candidate of order) {
    const failure = await tryActivate(candidate);
    if (failure === undefined) {
      await tf.ready();
      return new TfjsBackend(candidate, options.transposedWeights ?? true);
    }
    failures.push(`${candidate}: ${failure}`);
  }
  throw new Error(`tfjs backend "${name}" could not be activated here (${failures.join('; ')})`);
}
