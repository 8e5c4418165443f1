import type { Checkpoint, HostTensor, VisionConfig } from '@qf/io';
import type { Backend } from '../backend.js';
import type { LoadOptions } from '../load.js';
import type { ParamStore } from '../params.js';
import { type VisionGraphOptions, type VisionOutputName, visionGraph, visionGraphKey } from './graph.js';
import { validateVisionInputs } from './inputs.js';
import { loadVisionTensors } from './load.js';

/**
 * The BLIP-2 vision tower held by one backend. `run` takes and returns host tensors; all backend
 * memory used by a call is freed before it returns. Call {@link dispose} to free the parameters.
 *
 * @example
 * ```ts
 * const vision = await VisionModel.load(backend, checkpoint, blip2Config.vision);
 * const { vision_output } = await vision.run(pixelValues); // image_embeds for the Q-Former
 * vision.dispose();
 * ```
 */
export class VisionModel<T> {
  private constructor(
    readonly backend: Backend<T>,
    readonly config: VisionConfig,
    private readonly params: ParamStore<T>,
    /** Checkpoint tensors that were not loaded. */
    readonly ignored: readonly string[],
  ) {}

  /** Builds a model from canonical-named float32 tensors (e.g. `initParams(visionParamSpecs(config), ...)`). */
  static fromTensors<T>(
    backend: Backend<T>,
    config: VisionConfig,
    tensors: ReadonlyMap<string, HostTensor>,
    ignored: readonly string[] = [],
  ): VisionModel<T> {
    return new VisionModel(backend, config, backend.createParams(tensors), ignored);
  }

  /** Loads the `vision_model.*` tensors of a checkpoint (see `loadVisionTensors`). */
  static async load<T>(
    backend: Backend<T>,
    checkpoint: Checkpoint,
    config: VisionConfig,
    options?: LoadOptions,
  ): Promise<VisionModel<T>> {
    const loaded = await loadVisionTensors(checkpoint, config, options);
    return VisionModel.fromTensors(backend, config, loaded.tensors, loaded.ignored);
  }

  /**
   * Runs the tower on `pixel_values` [B, 3, S, S] (float; see `preprocessImages`).
   * @returns `vision_output` [B, N + 1, D] (last_hidden_state, the Q-Former's `image_embeds`),
   *   `vision_pooler_output` [B, D], and with `hiddenStates` `vision_hidden_states.{0..L}`.
   * @throws TensorError naming `pixel_values` when its dtype, shape or values are wrong.
   */
  async run(
    pixelValues: HostTensor,
    options: VisionGraphOptions = {},
  ): Promise<Record<VisionOutputName, HostTensor>> {
    const inputs = { pixel_values: pixelValues };
    validateVisionInputs(this.config, inputs);
    return this.backend.run(visionGraphKey(options), visionGraph(this.config, this.params, options), inputs);
  }

  /** Frees the parameters held by the backend. */
  dispose(): void {
    this.backend.disposeParams(this.params);
  }
}
