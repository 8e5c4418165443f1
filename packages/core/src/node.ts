/**
 * @qf/core/node — load a Q-Former straight from an HF model directory on disk (Node only).
 * @packageDocumentation
 */
import { openCheckpointDir } from '@qf/io/node';
import type { Backend } from './backend.js';
import { type LoadCheckpointOptions, loadQFormer } from './load-checkpoint.js';
import type { QFormerModel } from './model.js';

/**
 * Loads the Q-Former of an HF model directory (config.json + model.safetensors or a sharded
 * model.safetensors.index.json): HF BLIP-2 (retrieval or conditional generation), InstructBLIP, or a
 * LAVIS state dict saved as safetensors. Only the Q-Former's tensors are read.
 *
 * @example
 * ```ts
 * import { createTfjsBackend } from '@qf/backends/tfjs';
 * import { loadQFormerFromDir } from '@qf/core/node';
 * const model = await loadQFormerFromDir(await createTfjsBackend('cpu'), './blip2-model');
 * ```
 */
export async function loadQFormerFromDir<T>(
  backend: Backend<T>,
  dir: string,
  options: LoadCheckpointOptions = {},
): Promise<QFormerModel<T>> {
  const { config, checkpoint } = await openCheckpointDir(dir);
  try {
    return await loadQFormer(backend, checkpoint, config, options);
  } finally {
    await checkpoint.close();
  }
}

export * from './index.js';
