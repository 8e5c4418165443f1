import { type Checkpoint, detectCheckpointLayout, toCanonicalName } from '@qf/io';
import type { Backend } from './backend.js';
import { qformerModelConfigFromJson } from './config.js';
import type { LoadOptions } from './load.js';
import { QFormerModel } from './model.js';

/** Options of {@link loadQFormer}. */
export interface LoadCheckpointOptions {
  /** Throw on checkpoint tensors the Q-Former does not use (default: list them in `model.ignored`). */
  readonly strict?: boolean;
}

/**
 * Loads the Q-Former parts of any supported checkpoint (HF BLIP-2, HF InstructBLIP, LAVIS names),
 * given its parsed config.json content. Works with any Checkpoint (a file, shards, a Blob, a URL).
 */
export async function loadQFormer<T>(
  backend: Backend<T>,
  checkpoint: Checkpoint,
  configJson: unknown,
  options: LoadCheckpointOptions = {},
): Promise<QFormerModel<T>> {
  const config = qformerModelConfigFromJson(configJson);
  const layout = detectCheckpointLayout(checkpoint.names());
  const load: LoadOptions = {
    strict: options.strict ?? false,
    canonicalName: (n) => toCanonicalName(layout, n),
  };
  return QFormerModel.load(backend, checkpoint, config, load);
}
