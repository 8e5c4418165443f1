import type { VisionConfig } from '@qf/io';
import type { Ops } from '../ops.js';
import { type ParamStore, scoped } from '../params.js';
import { visionEmbeddings } from './embeddings.js';
import { visionEncoderLayer } from './layer.js';
import { VISION_PREFIX, visionShape } from './spec.js';

/** Outputs of {@link visionTower}. */
export interface VisionTowerOutputs<T> {
  /** post_layernorm of the last block's output, every token: [B, N + 1, D] (the Q-Former's image_embeds) */
  readonly lastHiddenState: T;
  /** hidden_states.0 (embeddings) .. hidden_states.{numLayers}: [B, N + 1, D] each, no post_layernorm */
  readonly hiddenStates: readonly T[];
  /** `post_layernorm(lastHiddenState[:, 0])`: post_layernorm applied a second time to the class token, [B, D] */
  readonly poolerOutput: T;
}

/**
 * The BLIP-2 vision tower (HF `Blip2VisionModel.forward` / `InstructBlipVisionModel.forward`):
 * embeddings, `num_hidden_layers` pre-LN blocks, `post_layernorm` on all tokens, and the pooled
 * class token.
 * @param params the full store (names under `vision_model.`)
 * @param pixelValues [B, 3, S, S] float32 with S = image_size (see `preprocessImage`)
 */
export function visionTower<T>(
  ops: Ops<T>,
  cfg: VisionConfig,
  params: ParamStore<T>,
  pixelValues: T,
): VisionTowerOutputs<T> {
  const s = visionShape(cfg);
  const root = scoped(params, VISION_PREFIX);
  let h = visionEmbeddings(ops, s, scoped(root, 'embeddings.'), pixelValues); // [B, N + 1, D]
  const hiddenStates = [h];
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    h = visionEncoderLayer(ops, s, scoped(root, `encoder.layers.${i}.`), h);
    hiddenStates.push(h);
  }
  const postLn = (x: T) =>
    ops.layerNorm(x, root.get('post_layernorm.weight'), root.get('post_layernorm.bias'), s.eps);
  const lastHiddenState = postLn(h);
  const cls = ops.reshape(ops.slice(lastHiddenState, 1, 0, 1), [0, -1]); // [B, D]
  return { lastHiddenState, hiddenStates, poolerOutput: postLn(cls) };
}
