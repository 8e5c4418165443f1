import { createTfjsBackend } from '@qf/backends/tfjs';
import { type TrainingBackend, requireTraining } from '@qf/core';
import { DemoError } from './errors.js';
import type { DemoBackendName } from './options.js';

/** The tfjs backend the recipe trains on (prod mode: no per-op NaN checks). */
export async function openTraining(name: DemoBackendName): Promise<TrainingBackend<unknown>> {
  try {
    const { enableProdMode } = await import('@tensorflow/tfjs-core');
    enableProdMode();
    return requireTraining(
      (await createTfjsBackend(name === 'tfjs-wasm' ? 'wasm' : 'cpu')) as unknown as TrainingBackend<unknown>,
    );
  } catch (e) {
    throw new DemoError('DEMO_BACKEND', `cannot open ${name} for training: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
