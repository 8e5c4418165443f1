import type { VisionConfig } from '@qf/io';
import { TensorError } from '@qf/io';
import type { GraphFn } from '../backend.js';
import type { ParamStore } from '../params.js';
import { visionTower } from './tower.js';

/** Name of the vision graph's input. */
export type VisionInputName = 'pixel_values';

/** Names of the vision graph's outputs. */
export type VisionOutputName = 'vision_output' | 'vision_pooler_output' | `vision_hidden_states.${number}`;

/** Options of {@link visionGraph}. */
export interface VisionGraphOptions {
  /** Also output `vision_hidden_states.{i}` for i = 0 (embeddings) .. num_hidden_layers. */
  readonly hiddenStates?: boolean;
}

/** A stable key for caching traced vision graphs. */
export function visionGraphKey(o: VisionGraphOptions = {}): string {
  return `vision:${+(o.hiddenStates ?? false)}`;
}

/**
 * The function a backend runs for the vision tower: input `pixel_values` [B, 3, S, S] float32;
 * outputs `vision_output` (last_hidden_state, post_layernorm applied) [B, N + 1, D],
 * `vision_pooler_output` [B, D] and, with `hiddenStates`, `vision_hidden_states.{i}` [B, N + 1, D].
 *
 * @example
 * ```ts
 * const out = await backend.run(visionGraphKey(), visionGraph(config, params), { pixel_values });
 * ```
 */
export function visionGraph<T>(
  config: VisionConfig,
  params: ParamStore<T>,
  options: VisionGraphOptions = {},
): GraphFn<T, VisionOutputName> {
  return (ops, inputs) => {
    const pixelValues = inputs['pixel_values'];
    if (pixelValues === undefined)
      throw new TensorError('TENSOR_MISSING', 'pixel_values', 'the vision tower needs pixel_values');
    const tower = visionTower(ops, config, params, pixelValues);
    const out: Record<string, T> = {
      vision_output: tower.lastHiddenState,
      vision_pooler_output: tower.poolerOutput,
    };
    if (options.hiddenStates) {
      for (const [i, h] of tower.hiddenStates.entries()) out[`vision_hidden_states.${i}`] = h;
    }
    return out as Record<VisionOutputName, T>;
  };
}
